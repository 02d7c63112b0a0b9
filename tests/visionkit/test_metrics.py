import pytest
import torch

from visionkit.metrics import accuracy, group_accuracies, retrieval_metrics, worst_group_accuracy

A, B, C, D = 0, 1, 2, 3


def test_retrieval_metrics_against_hand_computed_values():
    gallery = torch.tensor([B, A, B, A, C])
    queries = torch.tensor([A, B, C, D])  # D has no match: skipped
    sim = torch.tensor(
        [
            [0.9, 0.8, 0.7, 0.6, 0.5],  # A: correct at ranks 2, 4
            [0.1, 0.2, 0.9, 0.3, 0.4],  # B: correct at ranks 1, 5
            [0.5, 0.4, 0.3, 0.2, 0.1],  # C: correct at rank 5
            [0.5, 0.4, 0.3, 0.2, 0.1],
        ]
    )
    m = retrieval_metrics(sim, queries, gallery)
    assert m["rank1"] == pytest.approx(1 / 3)
    assert m["rank5"] == pytest.approx(1.0)
    assert m["rank10"] == pytest.approx(1.0)
    ap = [(1 / 2 + 2 / 4) / 2, (1 / 1 + 2 / 5) / 2, 1 / 5]
    inp = [2 / 4, 2 / 5, 1 / 5]
    assert m["mAP"] == pytest.approx(sum(ap) / 3)
    assert m["mINP"] == pytest.approx(sum(inp) / 3)


def test_rank_k_cut_offs():
    gallery = torch.arange(12)
    sim = -torch.arange(12.0)[None].repeat(3, 1)  # gallery order = rank order
    queries = torch.tensor([0, 4, 10])  # correct item at ranks 1, 5, 11
    m = retrieval_metrics(sim, queries, gallery)
    assert (m["rank1"], m["rank5"], m["rank10"]) == pytest.approx((1 / 3, 2 / 3, 2 / 3))
    assert m["mAP"] == pytest.approx((1 + 1 / 5 + 1 / 11) / 3)
    assert m["mINP"] == pytest.approx(m["mAP"])  # one correct item: INP = AP


def test_ties_keep_gallery_order():
    m = retrieval_metrics(torch.zeros(1, 3), torch.tensor([1]), torch.tensor([0, 1, 1]), ks=(1,))
    assert m["rank1"] == 0.0
    assert m["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_retrieval_errors():
    with pytest.raises(ValueError, match="expected"):
        retrieval_metrics(torch.zeros(2, 3), torch.zeros(2), torch.zeros(4))
    with pytest.raises(ValueError, match="no query"):
        retrieval_metrics(torch.zeros(1, 2), torch.tensor([5]), torch.tensor([0, 1]))


def test_accuracy_and_groups():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 0, 1])
    groups = torch.tensor([0, 1, 1, 2])
    assert accuracy(logits, labels) == 0.75
    assert group_accuracies(logits, labels, groups) == {0: 1.0, 1: 0.5, 2: 1.0}
    assert worst_group_accuracy(logits, labels, groups) == 0.5
    with pytest.raises(ValueError, match="3 labels"):
        accuracy(logits, labels[:3])
