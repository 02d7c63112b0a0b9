"""A small word-level tokenizer for the tiny CLIP models trained on the generated data.

No pretrained BPE tokenizer can be downloaded here, so captions are split into lower-case words
and punctuation marks and mapped through a fixed vocabulary. Every encoded caption is
``<bos> words... <eos>`` padded with ``<pad>``; the text tower pools the ``<eos>`` position.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS)
_WORD = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


def split_words(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words and punctuation marks.

    Examples
    --------
    >>> split_words("A red Circle, on sand.")
    ['a', 'red', 'circle', ',', 'on', 'sand', '.']
    """
    return _WORD.findall(text.lower())


def default_vocabulary() -> tuple[str, ...]:
    """Special tokens followed by every word the generated datasets can write."""
    from visionkit.datasets import persons, shapes

    words = sorted({*shapes.WORDS, *persons.WORDS, "photo", "image", "of", "an"})
    return SPECIAL_TOKENS + tuple(w for w in words if w not in SPECIAL_TOKENS)


class WordTokenizer:
    """Map captions to fixed-length id tensors through a word vocabulary.

    Parameters
    ----------
    vocabulary : sequence of str, optional
        Tokens in id order; must start with ``<pad>, <unk>, <bos>, <eos>``. Defaults to
        :func:`default_vocabulary`.

    Examples
    --------
    >>> tok = WordTokenizer()
    >>> ids = tok.encode(["a red circle"], context_length=8)
    >>> ids.shape
    torch.Size([1, 8])
    >>> tok.decode(ids[0])
    'a red circle'
    """

    pad_id = 0
    unk_id = 1
    bos_id = 2
    eos_id = 3

    def __init__(self, vocabulary: Sequence[str] | None = None) -> None:
        vocab = tuple(default_vocabulary() if vocabulary is None else vocabulary)
        if vocab[: len(SPECIAL_TOKENS)] != SPECIAL_TOKENS:
            raise ValueError(
                f"WordTokenizer: the vocabulary must start with {SPECIAL_TOKENS}, got "
                f"{vocab[: len(SPECIAL_TOKENS)]}; prepend the special tokens"
            )
        if len(set(vocab)) != len(vocab):
            raise ValueError("WordTokenizer: the vocabulary contains duplicate tokens")
        self.vocabulary = vocab
        self._index = {w: i for i, w in enumerate(vocab)}

    def __len__(self) -> int:
        return len(self.vocabulary)

    def word_ids(self, text: str) -> list[int]:
        """Ids of the words of ``text``, no ``<bos>``/``<eos>`` (unknown words give ``<unk>``)."""
        return [self._index.get(w, self.unk_id) for w in split_words(text)]

    def encode(
        self, texts: str | Iterable[str], context_length: int, *, truncate: bool = False
    ) -> torch.Tensor:
        """Encode captions as ``(B, context_length)`` int64 ids.

        Parameters
        ----------
        texts : str or iterable of str
            Captions.
        context_length : int
            Length of the text tower's context (``max_position_embeddings``).
        truncate : bool
            Cut long captions (keeping ``<eos>``) instead of raising.

        Raises
        ------
        ValueError
            If a caption plus ``<bos>``/``<eos>`` is longer than ``context_length`` and
            ``truncate`` is false.
        """
        if isinstance(texts, str):
            texts = [texts]
        rows = []
        for i, text in enumerate(texts):
            ids = self.word_ids(text)
            if len(ids) + 2 > context_length:
                if not truncate:
                    raise ValueError(
                        f"caption {i} ({text[:60]!r}...) has {len(ids)} tokens plus <bos>/<eos>, "
                        f"but the text context holds {context_length}; shorten it, pass "
                        "truncate=True, or use a backbone with a longer context_length"
                    )
                ids = ids[: context_length - 2]
            row = [self.bos_id, *ids, self.eos_id]
            rows.append(row + [self.pad_id] * (context_length - len(row)))
        if not rows:
            raise ValueError("WordTokenizer.encode: no captions given")
        return torch.tensor(rows, dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Turn ids back into text, dropping special tokens."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return " ".join(self.vocabulary[i] for i in values if i >= len(SPECIAL_TOKENS))

    def save(self, directory: str | Path) -> Path:
        """Write ``vocab.json`` into ``directory`` and return its path."""
        path = Path(directory) / "vocab.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(list(self.vocabulary)) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> WordTokenizer:
        """Read ``vocab.json`` from ``directory``."""
        path = Path(directory) / "vocab.json"
        if not path.is_file():
            raise FileNotFoundError(
                f"no tokenizer vocabulary at {path}; save one with WordTokenizer.save(directory)"
            )
        vocab = json.loads(path.read_text())
        if not isinstance(vocab, list) or not all(isinstance(w, str) for w in vocab):
            raise ValueError(f"{path} must hold a JSON list of strings")
        return cls(vocab)
