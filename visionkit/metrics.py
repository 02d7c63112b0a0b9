r"""Classification and retrieval metrics.

Retrieval (text-to-image person search): for query :math:`q` with gallery items sorted by
descending similarity (ties broken by gallery order) and the correct items at 1-based ranks
:math:`r_1 < \dots < r_m`:

- Rank-k: 1 if :math:`r_1 \le k`;
- AP: :math:`\frac{1}{m}\sum_{j=1}^{m} j / r_j` (mAP is its mean over queries);
- INP: :math:`m / r_m`, the precision at the hardest correct match (mINP is its mean).

Queries without any correct gallery item are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy.

    Examples
    --------
    >>> accuracy(torch.tensor([[2.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    0.5
    """
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions but {labels.shape[0]} labels")
    return float((logits.argmax(dim=-1) == labels).float().mean())


def group_accuracies(
    logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor
) -> dict[int, float]:
    """Accuracy per group index (only groups that occur).

    Examples
    --------
    >>> logits = torch.tensor([[1.0, 0.0]] * 3)
    >>> group_accuracies(logits, torch.tensor([0, 1, 0]), groups=torch.tensor([0, 1, 1]))
    {0: 1.0, 1: 0.5}
    """
    correct = logits.argmax(dim=-1) == labels
    return {int(g): float(correct[groups == g].float().mean()) for g in torch.unique(groups)}


def worst_group_accuracy(logits: torch.Tensor, labels: torch.Tensor, groups: torch.Tensor) -> float:
    """The lowest per-group accuracy.

    Examples
    --------
    >>> logits = torch.tensor([[1.0, 0.0]] * 3)
    >>> worst_group_accuracy(logits, torch.tensor([0, 1, 0]), groups=torch.tensor([0, 1, 1]))
    0.5
    """
    return min(group_accuracies(logits, labels, groups).values())


def retrieval_metrics(
    similarity: torch.Tensor,
    query_ids: torch.Tensor,
    gallery_ids: torch.Tensor,
    ks: Sequence[int] = (1, 5, 10),
) -> dict[str, float]:
    """Rank-k, mAP and mINP of a query-by-gallery similarity matrix.

    Parameters
    ----------
    similarity : torch.Tensor
        ``(Q, G)`` scores, higher is more similar.
    query_ids, gallery_ids : torch.Tensor
        ``(Q,)`` and ``(G,)`` identity labels; a gallery item is correct if its label equals the
        query's.
    ks : sequence of int
        Cut-offs for Rank-k.

    Returns
    -------
    dict
        ``{"rank1": ..., "rank5": ..., "rank10": ..., "mAP": ..., "mINP": ...}`` as fractions.

    Examples
    --------
    >>> sim = torch.tensor([[0.9, 0.1, 0.8], [0.2, 0.7, 0.3]])
    >>> m = retrieval_metrics(sim, torch.tensor([0, 1]), torch.tensor([0, 0, 1]), ks=(1,))
    >>> m["rank1"], round(m["mAP"], 4), round(m["mINP"], 4)  # (1 + 2/3)/2 and 1/2; 2/3 and 1/2
    (0.5, 0.6667, 0.5833)
    """
    if similarity.ndim != 2 or similarity.shape != (len(query_ids), len(gallery_ids)):
        raise ValueError(
            f"similarity has shape {tuple(similarity.shape)}; expected (queries, gallery) = "
            f"({len(query_ids)}, {len(gallery_ids)})"
        )
    order = torch.argsort(similarity, dim=1, descending=True, stable=True)
    matches = (gallery_ids[order] == query_ids[:, None]).float()
    valid = matches.sum(dim=1) > 0
    if not bool(valid.any()):
        raise ValueError("no query has a correct item in the gallery; check the identity labels")
    matches = matches[valid]
    ranks = torch.arange(1, matches.shape[1] + 1, dtype=torch.float32)
    hits = matches.cumsum(dim=1)
    num_pos = matches.sum(dim=1)
    ap = ((hits / ranks) * matches).sum(dim=1) / num_pos
    last = matches.shape[1] - torch.flip(matches, dims=[1]).argmax(dim=1)
    inp = num_pos / last.float()
    out = {
        f"rank{k}": float((hits[:, min(k, matches.shape[1]) - 1] > 0).float().mean()) for k in ks
    }
    out["mAP"] = float(ap.mean())
    out["mINP"] = float(inp.mean())
    return out
