"""``report.md``: the metric tables and the figures of :func:`esmscale.evaluate`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["format_value", "markdown_table", "write_report"]


def format_value(value: Any, digits: int = 3, percent: bool = False, unit: str = "%") -> str:
    """A table cell: ``digits`` significant digits; ``-`` for missing or infinite values.

    ``percent=True`` shows ``100 * value`` with a sign and ``unit`` (``%`` or ``pp``).

    Examples
    --------
    >>> format_value(0.123456), format_value(None), format_value(0.0512, percent=True)
    ('0.123', '-', '+5.1 %')
    >>> format_value(float("inf")), format_value(-0.02, percent=True, unit="pp")
    ('-', '-2.0 pp')
    """
    if value is None:
        return "-"
    if isinstance(value, bool | str):
        return str(value)
    v = float(value)
    if not math.isfinite(v):
        return "-"
    if percent:
        return f"{100 * v:+.1f} {unit}"
    return f"{v:.{digits}g}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table.

    Examples
    --------
    >>> print(markdown_table(["a", "b"], [["1", "2"]]))
    | a | b |
    | --- | --- |
    | 1 | 2 |
    """
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


_LEGEND = (
    "CRPS: fair CRPS for ensembles, MAE for a single member. Spread-skill: "
    "sqrt((M+1)/M) * spread / RMSE of the ensemble mean (1 = calibrated). Rank delta: "
    "rank-histogram flatness (about 1 when flat). PSD error: mean \\|log10(PSD / PSD_obs)\\| "
    "for k >= k*. Quantile errors: Q_method - Q_obs. Histogram error: sum of \\|frequency "
    "differences\\| over {bins} bins (0..2). Wet-day frequency error in percentage points. "
    "Pooled r / low-pass r: correlation with the coarse input after average pooling by the "
    "factor / after a Gaussian low-pass filter."
)


def _summary_rows(metrics: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for name, m in metrics["methods"].items():
        q = m["quantile_error"]
        rows.append(
            [
                name,
                str(m["members"]),
                format_value(m["score"]) + ("" if m["score_name"] == "crps" else " (MAE)"),
                format_value(m["spread_skill"]),
                format_value(m["rank_flatness"]),
                format_value(m["psd_error"]),
                format_value(q.get("0.95")),
                format_value(q.get("0.99")),
                format_value(m["histogram_error"]),
                format_value(m["wet_day_error"], percent=True, unit="pp"),
                format_value(m["mean_bias"]),
                format_value(m["zonal_profile_error"]),
                format_value(m["pooled_corr"]),
                format_value(m["lowpass_corr"]),
            ]
        )
    return rows


def _header(metrics: Mapping[str, Any]) -> list[str]:
    """Title and the bullet list: period, grid, k*, wet-day threshold, version."""
    units = metrics.get("units") or ""
    u = f" ({units})" if units else ""
    k_star = metrics.get("k_star")
    k_deg = metrics.get("k_star_per_degree")
    k_deg = "" if k_deg is None else f" = {format_value(k_deg)} cycles per degree"
    period = metrics["period"]
    period_line = (
        f"- Observations: {period['start']} to {period['end']} ({period['n_times']} time "
        "steps; each method is scored on the times it shares with them)"
    )
    wet_line = (
        f"- Wet day: value >= {format_value(metrics['threshold'])}{u}; observed wet-day "
        f"fraction {format_value(metrics['obs']['wet_day_fraction'])}"
    )
    return [
        f"# Evaluation of downscaled {metrics.get('variable') or 'fields'}",
        "",
        period_line,
        f"- Grid: {metrics['grid']['ny']} x {metrics['grid']['nx']} cells"
        + (f", downscaling factor {metrics['factor']}" if metrics.get("factor") else ""),
        f"- k* = {format_value(k_star)} cycles per cell{k_deg} ({metrics['k_star_source']})",
        wet_line,
        f"- esmscale {metrics.get('esmscale_version', '')}; metric definitions: docs/evaluation.md",
        "",
    ]


def _summary(metrics: Mapping[str, Any], u: str) -> list[str]:
    """The summary table (one row per method) and its legend."""
    header = [
        "method",
        "members",
        "CRPS" + u,
        "spread-skill",
        "rank delta",
        "PSD error k>=k*",
        "q95 error" + u,
        "q99 error" + u,
        "hist. error",
        "wet-day freq. error",
        "mean bias" + u,
        "zonal error" + u,
        "pooled r",
        "low-pass r",
    ]
    return [
        "## Summary",
        "",
        markdown_table(header, _summary_rows(metrics)),
        "",
        _LEGEND.format(bins=metrics.get("bins", 500)),
        "",
    ]


def _quantiles(metrics: Mapping[str, Any], u: str) -> list[str]:
    """Observed quantiles and each method's absolute (relative) quantile errors."""
    qs = [str(q) for q in metrics["quantiles"]]
    obs_q = metrics["obs"]["quantiles"]
    rows = [["observed (value)", *[format_value(obs_q.get(q)) for q in qs]]]
    for name, m in metrics["methods"].items():
        rows.append(
            [
                name,
                *[
                    f"{format_value(m['quantile_error'].get(q))} "
                    f"({format_value(m['quantile_error_relative'].get(q), percent=True)})"
                    for q in qs
                ],
            ]
        )
    return [
        "## Quantile errors" + u,
        "",
        markdown_table(["method", *[f"q{q}" for q in qs]], rows),
        "",
    ]


def _crps_vs_t(metrics: Mapping[str, Any]) -> list[str]:
    """The CRPS-against-noise-level table (nothing without a curve)."""
    if not metrics.get("crps_vs_t"):
        return []
    c = metrics["crps_vs_t"]
    return [
        "## CRPS against noise level",
        "",
        markdown_table(
            ["t", *[format_value(t) for t in c["t"]]],
            [["CRPS", *[format_value(v) for v in c["crps"]]]],
        ),
        "",
        f"Lowest CRPS at t = {format_value(c['t_best'])}.",
        "",
    ]


def _field_scores(metrics: Mapping[str, Any]) -> list[str]:
    """Index biases and FSS tables, or why they are absent."""
    fs = metrics.get("field_scores")
    if not fs:
        return []
    if fs.get("skipped"):
        return ["## Climate indices and FSS", "", f"Not computed: {fs['skipped']}", ""]
    lines: list[str] = []
    if fs["index_bias"]:
        names = list(next(iter(fs["index_bias"].values())))
        rows = [
            [m, *[format_value(b.get(i), percent=True) for i in names]]
            for m, b in fs["index_bias"].items()
        ]
        lines += [
            "## Climate indices (relative bias of the mean against the observations)",
            "",
            markdown_table(["method", *names], rows),
            "",
        ]
    if fs["fss"]:
        first = next(iter(fs["fss"].values()))
        rows = []
        for m, per_thr in fs["fss"].items():
            for thr, per_w in per_thr.items():
                rows.append([m, f"{thr} mm/day", *[format_value(v) for v in per_w.values()]])
        wins = list(next(iter(first.values())))
        lines += [
            "## Fractions skill score (1 = perfect, by window size in cells)",
            "",
            markdown_table(["method", "threshold", *[f"{w}x{w}" for w in wins]], rows),
            "",
        ]
    return lines


def _figures(figures: Mapping[str, Sequence[str]]) -> list[str]:
    lines = ["## Figures", ""]
    for section, files in figures.items():
        lines += [f"### {section}", ""]
        lines += [f"![{section}]({f})" for f in files]
        lines.append("")
    return lines


def write_report(
    path: str | os.PathLike[str],
    metrics: Mapping[str, Any],
    figures: Mapping[str, Sequence[str]],
) -> Path:
    """Write the Markdown report for a metrics dict from :func:`esmscale.evaluate`.

    Parameters
    ----------
    path
        Output file (``report.md``); figure paths are written relative to its folder.
    metrics
        The dict returned by :func:`esmscale.evaluate`.
    figures
        Section title -> PNG file names (relative to the report's folder).

    Examples
    --------
    The metrics of one single-member method (as :func:`esmscale.evaluate` computes them):

    >>> import dask, tempfile
    >>> from esmscale import metrics as M
    >>> from esmscale.datasets import synthetic_precip
    >>> from esmscale.report import scores as S
    >>> obs = synthetic_precip(16, 16, 4, seed=1).pr
    >>> spec = S.ScoreSpec(
    ...     obs=obs, tdim="time", coarse=None, factor=None, k_star=0.0, k_source="given",
    ...     k_star_per_degree=0.0, threshold=1.0, quantiles=(0.5, 0.99), bins=20, curve=None,
    ... )
    >>> aligned = {"x1.1": M.align_to_obs((obs * 1.1).expand_dims(member=1), obs)}
    >>> obs_values = dask.compute(S.obs_lazy(spec))[0]
    >>> t = S.pick_map_time(spec, aligned)
    >>> lazy = S.method_lazy(*aligned["x1.1"], spec, map_time=t, obs_values=obs_values)
    >>> methods = {"x1.1": dask.compute(lazy)[0]}
    >>> extra = dask.compute(S.extra_lazy(spec, aligned, obs_values, methods, t))[0]
    >>> scores = S.Scores(obs_values, methods, extra, t)
    >>> metrics = S.assemble(spec, scores)
    >>> path = write_report(Path(tempfile.mkdtemp()) / "report.md", metrics, {"Maps": ["m.png"]})
    >>> text = path.read_text(encoding="utf-8")
    >>> print(text.splitlines()[0])
    # Evaluation of downscaled pr
    >>> "| x1.1 | 1 |" in text, "![Maps](m.png)" in text
    (True, True)
    """
    out = Path(path)
    units = metrics.get("units") or ""
    u = f" ({units})" if units else ""
    lines = [
        *_header(metrics),
        *_summary(metrics, u),
        *_quantiles(metrics, u),
        *_crps_vs_t(metrics),
        *_field_scores(metrics),
        *_figures(figures),
    ]
    out.write_text("\n".join(lines), encoding="utf-8")
    return out
