import numpy as np
import pytest

from visionkit.text_augment import LexiconTagger, augment_captions, keep_content_words


def test_keeps_nouns_adjectives_pronouns():
    text = "the woman is carrying a brown handbag and she wears a black cap ."
    assert keep_content_words(text) == "woman brown handbag she black cap"


def test_pluggable_tagger():
    def everything_is_a_verb(words):
        return ["VERB"] * len(words)

    # nothing would remain: the caption is kept unchanged
    assert keep_content_words("a red hat", everything_is_a_verb) == "a red hat"
    custom = LexiconTagger({"zebra": "NOUN"}, default="X")
    assert keep_content_words("a zebra runs", custom) == "zebra"


def test_tagger_must_return_one_tag_per_word():
    with pytest.raises(ValueError, match="one tag per word"):
        keep_content_words("a red hat", lambda words: ["NOUN"])


def test_probability_controls_the_rate():
    captions = ["a man wearing a red shirt"] * 2000
    out = augment_captions(captions, 0.2, rng=np.random.default_rng(0))
    rate = sum(c != captions[0] for c in out) / len(out)
    assert 0.17 < rate < 0.23
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        augment_captions(captions, 1.5)
