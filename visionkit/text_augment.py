"""Caption augmentation that keeps only content words, with a pluggable part-of-speech tagger.

A tagger is any callable mapping a list of words to a list of Universal POS tags of the same
length (``"NOUN"``, ``"ADJ"``, ``"PRON"``, ``"VERB"``, ...). The built-in :class:`LexiconTagger`
uses a small lexicon that covers the generated captions and common English function words; a
spaCy or NLTK tagger can be plugged in instead::

    nlp = spacy.load("en_core_web_sm")
    tagger = lambda words: [t.pos_ for t in nlp(" ".join(words))]  # one tag per word
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from visionkit.tokenizer import split_words

Tagger = Callable[[Sequence[str]], Sequence[str]]
KEEP_TAGS: frozenset[str] = frozenset({"NOUN", "PROPN", "ADJ", "PRON"})

_NOUNS = (
    "circle square triangle cross grass sand water snow photo picture image man woman guy lady "
    "person shirt top sweater jacket trousers pants jeans shorts hair hat cap backpack handbag bag "
    "dog cat car shape background"
)
_ADJECTIVES = (
    "red yellow purple orange black pink blue green white gray grey brown blond small large long "
    "short big little dark light"
)
_PRONOUNS = "he she his her him hers they them their it its i you we me us"
_DETERMINERS = "a an the this that these those some"
_ADPOSITIONS = "of on in with at by for from to"
_VERBS = "is are was were has have wears wearing carrying carries dressed holding be"
_OTHER = {"and": "CCONJ", "or": "CCONJ", "who": "PRON", "there": "PRON", ".": "PUNCT", ",": "PUNCT"}


def default_lexicon() -> dict[str, str]:
    """Word -> Universal POS tag for the built-in tagger."""
    lexicon: dict[str, str] = {}
    for words, tag in (
        (_NOUNS, "NOUN"),
        (_ADJECTIVES, "ADJ"),
        (_PRONOUNS, "PRON"),
        (_DETERMINERS, "DET"),
        (_ADPOSITIONS, "ADP"),
        (_VERBS, "VERB"),
    ):
        lexicon.update(dict.fromkeys(words.split(), tag))
    lexicon.update(_OTHER)
    return lexicon


class LexiconTagger:
    """Tag words by dictionary look-up; unknown words get ``default``.

    Examples
    --------
    >>> LexiconTagger()(["she", "wears", "a", "red", "hat"])
    ['PRON', 'VERB', 'DET', 'ADJ', 'NOUN']
    """

    def __init__(self, lexicon: Mapping[str, str] | None = None, default: str = "X") -> None:
        self.lexicon = dict(default_lexicon() if lexicon is None else lexicon)
        self.default = default

    def __call__(self, words: Sequence[str]) -> list[str]:
        """One tag per word."""
        return [self.lexicon.get(w.lower(), self.default) for w in words]


def keep_content_words(text: str, tagger: Tagger | None = None) -> str:
    """Drop every word whose tag is not a noun, adjective or pronoun.

    Returns ``text`` unchanged if nothing would remain.

    Examples
    --------
    >>> keep_content_words("a man wearing a blue shirt . he has short hair .")
    'man blue shirt he short hair'
    """
    words = split_words(text)
    tags = list((tagger or LexiconTagger())(words))
    if len(tags) != len(words):
        raise ValueError(
            f"the POS tagger returned {len(tags)} tags for {len(words)} words; a tagger must "
            "return exactly one tag per word"
        )
    kept = [w for w, t in zip(words, tags, strict=True) if t in KEEP_TAGS]
    return " ".join(kept) if kept else text


def augment_captions(
    captions: Sequence[str],
    prob: float = 0.2,
    *,
    tagger: Tagger | None = None,
    rng: np.random.Generator | None = None,
) -> list[str]:
    """With probability ``prob`` per caption, keep only its nouns, adjectives and pronouns.

    Examples
    --------
    >>> augment_captions(["a red hat"], prob=1.0)
    ['red hat']
    >>> augment_captions(["a red hat"], prob=0.0)
    ['a red hat']
    """
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"augment_captions: prob must lie in [0, 1], got {prob}")
    rng = rng if rng is not None else np.random.default_rng()
    tagger = tagger or LexiconTagger()
    draws = rng.random(len(captions))
    return [
        keep_content_words(c, tagger) if d < prob else c
        for c, d in zip(captions, draws, strict=True)
    ]
