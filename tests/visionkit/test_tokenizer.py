import pytest
import torch

from visionkit.tokenizer import SPECIAL_TOKENS, WordTokenizer, default_vocabulary, split_words


def test_encode_decode_round_trip():
    tok = WordTokenizer()
    ids = tok.encode(["a red circle", "a man wearing a blue shirt ."], context_length=12)
    assert ids.shape == (2, 12)
    assert ids[:, 0].tolist() == [tok.bos_id, tok.bos_id]
    assert (ids == tok.eos_id).sum(dim=1).tolist() == [1, 1]
    assert tok.decode(ids[1]) == "a man wearing a blue shirt ."


def test_unknown_words_map_to_unk():
    tok = WordTokenizer()
    assert tok.word_ids("zebra") == [tok.unk_id]


def test_too_long_caption_says_what_and_how():
    tok = WordTokenizer()
    with pytest.raises(ValueError, match=r"caption 1 .* 5 tokens .* context holds 6"):
        tok.encode(["a", "a red circle on sand"], context_length=6)
    ids = tok.encode(["a red circle on sand"], context_length=6, truncate=True)
    assert ids[0, -1].item() == tok.eos_id


def test_save_load(tmp_path):
    tok = WordTokenizer()
    tok.save(tmp_path)
    assert WordTokenizer.load(tmp_path).vocabulary == tok.vocabulary
    with pytest.raises(FileNotFoundError, match=r"vocab\.json"):
        WordTokenizer.load(tmp_path / "missing")


def test_vocabulary_must_start_with_special_tokens():
    with pytest.raises(ValueError, match="must start with"):
        WordTokenizer(["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        WordTokenizer([*SPECIAL_TOKENS, "a", "a"])


def test_default_vocabulary_covers_generated_captions():
    from visionkit.datasets import make_persons, make_shapes

    vocab = set(default_vocabulary())
    captions = make_shapes(50, background_caption_prob=1.0).captions + make_persons(5).captions
    words = {w for c in captions for w in split_words(c)}
    assert words <= vocab
    assert torch.tensor(0).dtype == torch.int64
