"""The issue-17 probes' data and verdict rules (``benchmarks/_visionkit_probes.py``).

The probes are benchmark code, but their data decide what the benchmark can show: these tests
check that each setting is built as documented (fast: small sizes, no training).
"""

from __future__ import annotations

import doctest
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from visionkit.backbones import ClipBackbone
from visionkit.datasets import SHAPES
from visionkit.datasets.shapes import BACKGROUNDS

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def probes():
    sys.path.append(str(BENCHMARKS))
    try:
        yield importlib.import_module("_visionkit_probes")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_docstring_examples(probes):
    result = doctest.testmod(probes, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_verdict_rule_and_paired_differences(probes):
    a = probes.summary([0.9, 0.8, 0.85])
    b = probes.summary([0.5, 0.55, 0.6])
    beats = probes.verdict(a, b)
    assert beats["verdict"] == "beats"
    assert probes.verdict(b, a)["verdict"] == "loses"
    assert beats["paired_diff"]["wins"] == 3 and beats["paired_diff"]["losses"] == 0
    assert beats["paired_diff"]["values"] == pytest.approx([0.4, 0.25, 0.25])
    # overlapping mean +- std intervals tie even if one mean is higher in every seed
    c = probes.summary([0.60, 0.70, 0.65])
    d = probes.summary([0.58, 0.68, 0.63])
    tie = probes.verdict(c, d)
    assert tie["verdict"] == "ties" and tie["paired_diff"]["wins"] == 3


def test_balanced_shifted_has_every_group_equally(probes):
    data = probes.balanced_shifted(3, seed=5)
    counts = torch.bincount(data.groups, minlength=len(SHAPES) * len(BACKGROUNDS))
    assert counts.tolist() == [3] * (len(SHAPES) * len(BACKGROUNDS))


def test_complementary_task_sources(probes):
    task = probes.complementary_task(120, seed=1)
    source, labels, captions = task["source"], task["labels"], task["captions"]
    assert set(source.tolist()) == {0, 1, 2}
    for s, y, c in zip(source.tolist(), labels.tolist(), captions, strict=True):
        # the caption names the shape unless the image alone decides
        assert (SHAPES[y] in c) == (s != 1)
    # text-decided images carry no shape: each is flat background colour where the shape was
    full = probes.make_shapes(120, shifted=True, seed=1)
    for i in (source == 2).nonzero().flatten().tolist():
        inside = task["images"][i][:, full.masks[i]]
        assert torch.allclose(inside, inside[:, :1].expand_as(inside))
    assert torch.equal(task["images"][source != 2], full.images[source != 2])


def test_drop_modality_levels(probes):
    task = probes.complementary_task(400, seed=2)
    clean = probes.drop_modality(task, 0.0, seed=2)
    assert clean["captions"] == task["captions"] and clean["solvable"] == 1.0
    assert torch.equal(clean["images"], task["images"])
    dropped = probes.drop_modality(task, 0.5, seed=2)
    empty = sum(c == "" for c in dropped["captions"])
    noised = int((dropped["images"] != task["images"]).flatten(1).any(1).sum())
    assert 60 < empty < 140 and 60 < noised < 140
    # a third of the dropped pairs lose their only informative modality
    assert 0.8 < dropped["solvable"] < 0.92


def test_corrupt_captions_and_held_out_split(probes):
    rng = np.random.default_rng(0)
    caption = "a man in a red top and black shorts . he has short black hair ."
    assert probes.corrupt_captions([caption], 0.0, 0.0, rng) == [caption]
    noisy = probes.corrupt_captions([caption] * 50, 0.5, 0.0, rng)
    assert sum(n != caption for n in noisy) > 40
    assert all(len(n.split(" ")) == len(caption.split(" ")) for n in noisy)
    train = probes.persons_split(6, 2, 0, 0, held_out=False, relabel=True)
    test = probes.persons_split(4, 2, 4000, 1, held_out=True, relabel=False)
    assert train["identities"].tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert all(probes.HELD_OUT_TOP not in c.split(" . ")[0] for c in train["captions"])
    assert all(probes._top(int(i)) == probes.HELD_OUT_TOP for i in test["identities"])
    assert all(probes._top(int(i)) != probes.HELD_OUT_TOP for i in range(6))


def test_background_shortcut_rate_in_unit_range(probes, backbone: ClipBackbone):
    data = probes.balanced_shifted(1, seed=0)
    rate = probes.background_shortcut_rate(backbone, data)
    assert 0.0 <= rate <= 1.0


def test_verdicts_cover_every_setting(probes):
    s = probes.summary([0.5, 0.6])
    tta = dict.fromkeys(("zero_shot", "tpt", "invariant_tta"), s)
    results = {
        "tta_sweep": {"0.95": {f"{k}_worst_group_acc": v for k, v in tta.items()}},
        "mope_sweep": {
            "trainable_params": {},
            "n=100,noise=0": {f"{m}_acc": s for m in ("mope", "prompt_tuning", "late_fusion")},
        },
        "uit_probe": {
            "noisy": {n: {"rank1": s} for n in ("pretrained", *probes.UIT_LOSS_SETS)},
        },
    }
    v = probes.verdicts(results)
    assert "tta/shortcut=0.95/invariant_tta_vs_zero_shot" in v
    assert "mope/n=100,noise=0/mope_vs_late_fusion" in v
    assert "uit/noisy/uit_vs_baseline" in v
    assert "uit/noisy/sdm_id_vs_sdm" in v
    assert {x["verdict"] for x in v.values()} == {"ties"}
