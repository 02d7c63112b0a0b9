"""
An evaluation report
====================

:func:`esmscale.evaluate` (also ``esmscale evaluate``) scores downscaled results against
observations and writes a Markdown report, its figures and ``metrics.json``. Here, on a
synthetic perfect-model world (the truth is known): the consistency-model ensemble against
plain bilinear interpolation of the same coarse input. Metrics are described on
:doc:`/evaluation`.
"""

import tempfile
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import torch

import esmscale
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.prepare import regrid

torch.set_num_threads(1)

obs = synthetic_precip(64, 64, 12, seed=21)
esm = synthetic_esm(obs)
ensemble = esm.esm.downscale("synthetic-pr-4x", members=4, seed=0)
bilinear = regrid(esm["pr"], obs["pr"])

report_dir = Path(tempfile.mkdtemp()) / "report"
metrics = esmscale.evaluate(
    obs,
    {"consistency model": ensemble, "bilinear": bilinear},
    coarse=esm,
    output_dir=report_dir,
    progress=False,
    indices=False,
)
print(sorted(p.name for p in report_dir.iterdir()))

# %%
# The headline scores
# -------------------
# Fair CRPS for the ensemble (MAE for the single bilinear field), the spread-skill ratio
# (1 for a reliable ensemble; below 1: too little spread), the error of the spectrum above k*
# and the error of the 99th percentile (mm day-1; negative: too weak extremes).
print(f"{'method':20s} {'score':>7s} {'spread/skill':>12s} {'PSD error':>9s} {'q99 error':>9s}")
for name, m in metrics["methods"].items():
    q99 = m["quantile_error"].get("0.99", m["quantile_error"].get(0.99))
    ssr = m.get("spread_skill")
    ssr_text = "-" if ssr is None else f"{ssr:.2f}"
    print(f"{name:20s} {m['score']:7.3f} {ssr_text:>12s} {m['psd_error']:9.3f} {q99:9.3f}")

# %%
# The report's figures
# --------------------
# ``report.md`` embeds these PNG files (each with labelled axes, units and colour bars); three
# of them are shown here as written: the maps of one day, the spectra and the rank histograms.
for name in ("maps_consistency_model.png", "psd.png", "rank_histograms.png"):
    png = report_dir / name
    image = mpimg.imread(png)
    fig, ax = plt.subplots(figsize=(image.shape[1] / 100, image.shape[0] / 100))
    ax.imshow(image)
    ax.set_axis_off()
    ax.set_title(png.name, fontsize=9)
    plt.show()
