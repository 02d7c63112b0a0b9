"""esmscale.evaluate: report files, valid PNGs, metrics consistent with esmscale.metrics."""

from __future__ import annotations

import json
import os
import sys
from types import SimpleNamespace

import matplotlib.image
import numpy as np
import pytest
import xarray as xr

from esmscale import metrics as M
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.errors import EsmscaleError
from esmscale.report import maps as report_maps
from esmscale.report.evaluation import evaluate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def world():
    """16x16 obs (8 days), its 4x coarse ESM, a deterministic and an ensemble result."""
    ds = synthetic_precip(16, 16, 8, seed=5)
    obs = ds.pr
    coarse = synthetic_esm(ds, factor=4).pr
    up = coarse.values.repeat(4, axis=-2).repeat(4, axis=-1)
    nearest = obs.copy(data=up.astype(np.float32))
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=1.5, size=(3, *obs.shape))
    ens = xr.concat([np.maximum(nearest + n, 0) for n in noise], dim="member").astype(np.float32)
    return obs, coarse, {"nearest": nearest, "noisy ensemble": ens}


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    img = matplotlib.image.imread(path)
    assert img.ndim == 3
    assert img.shape[0] > 100
    assert img.shape[1] > 100


def coastlines_or_skip():
    try:
        return report_maps.find_coastlines()
    except EsmscaleError as err:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must install Cartopy and its offline data: {err}")
        pytest.skip(f"Cartopy or its offline coastlines are missing: {err}")


def test_report_files_metrics_and_json(world, tmp_path):
    obs, coarse, results = world
    out = evaluate(
        obs,
        results,
        coarse,
        output_dir=tmp_path,
        crps_vs_t={0.1: 0.9, 0.2: 0.7, 0.4: 0.8},
        progress=False,
        maps=False,
    )
    expected = {
        "report.md", "metrics.json", "maps_nearest.png", "maps_noisy_ensemble.png",
        "bias_maps.png", "psd.png", "histograms.png", "zonal_profiles.png",
        "rank_histograms.png", "spread_skill.png", "crps_vs_t.png",
    }  # fmt: skip
    assert expected <= {p.name for p in tmp_path.iterdir()}
    for png in tmp_path.glob("*.png"):
        assert_png(png)
    # JSON-serialisable, identical to the file, NaN-free
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(out, allow_nan=False))
    assert out["factor"] == 4
    assert out["k_star"] == pytest.approx(1 / 8)
    assert out["crps_vs_t"]["t_best"] == 0.2

    ens, det = out["methods"]["noisy ensemble"], out["methods"]["nearest"]
    assert (ens["members"], det["members"]) == (3, 1)
    assert (ens["score_name"], det["score_name"]) == ("crps", "mae")
    assert det["crps"] is None
    assert det["spread_skill"] is None
    r_ens = results["noisy ensemble"]
    assert ens["crps"] == pytest.approx(float(M.fair_crps(r_ens, obs)), rel=1e-6)
    assert ens["spread_skill"] == pytest.approx(float(M.spread_skill_ratio(r_ens, obs)))
    assert sum(ens["rank_histogram"]) == pytest.approx(obs.size)
    assert det["mae"] == pytest.approx(float(M.mean_absolute_error(results["nearest"], obs)))
    # pooling the nearest-neighbour copy of the input gives the input back
    assert det["pooled_corr"] == pytest.approx(1.0)
    assert det["quantile_error"]["0.99"] == pytest.approx(
        float(M.quantile_errors(results["nearest"], obs, [0.99])[0]), rel=1e-6
    )
    wet = float(M.wet_day_fraction(results["nearest"]) - M.wet_day_fraction(obs))
    assert det["wet_day_error"] == pytest.approx(wet)

    report = (tmp_path / "report.md").read_text()
    for text in ("| method | members | CRPS", "| noisy ensemble | 3 |", "(MAE)", "![Power"):
        assert text in report
    for fig in ("maps_nearest.png", "psd.png", "rank_histograms.png", "crps_vs_t.png"):
        assert f"]({fig})" in report


def test_report_psd_of_the_coarse_input_meets_bilinear_at_large_scales(tmp_path):
    # issue 13: psd.png drew the coarse input ~16x (factor**2) below bilinear at large scales
    from esmscale.prepare import upsample_bilinear

    ds = synthetic_precip(64, 64, 16, seed=3)
    coarse = synthetic_esm(ds, factor=4).pr
    up = ds.pr.copy(data=upsample_bilinear(coarse.values, 4).astype(np.float32))
    out = evaluate(ds.pr, {"bilinear": up}, coarse, output_dir=tmp_path, maps=False,
                   progress=False)  # fmt: skip
    spectra = out["spectra"]
    assert set(spectra) == {"observed", "bilinear", "coarse input"}
    k_in, p_in = (np.asarray(spectra["coarse input"][v]) for v in ("wavenumber", "psd"))
    k_bl, p_bl = (np.asarray(spectra["bilinear"][v]) for v in ("wavenumber", "psd"))
    np.testing.assert_array_equal(k_in, k_bl[: k_in.size])  # cycles per degree on both grids
    np.testing.assert_allclose(p_in[:2] / p_bl[:2], 1.0, atol=0.15)
    assert out["k_star"] == 0.125 and out["k_star_per_degree"] == 0.5
    assert (
        "k* = 0.125 cycles per cell = 0.5 cycles per degree" in (tmp_path / "report.md").read_text()
    )
    assert_png(tmp_path / "psd.png")


def _as_real(da):
    """The synthetic field relabelled as if it were observed (so that it gets coastlines)."""
    return da.assign_attrs(long_name="precipitation")


def test_maps_with_offline_coastlines(world, tmp_path):
    coast = coastlines_or_skip()
    obs, coarse, results = world
    ens = {"noisy ensemble": _as_real(results["noisy ensemble"])}
    real = (_as_real(obs), ens, _as_real(coarse))
    evaluate(*real, output_dir=tmp_path / "c", progress=False, coastline_data=coast.data_dir)
    evaluate(*real, output_dir=tmp_path / "n", progress=False, maps=False)
    for f in ("maps_noisy_ensemble.png", "bias_maps.png"):
        assert_png(tmp_path / "c" / f)
        drawn = matplotlib.image.imread(tmp_path / "c" / f)
        plain = matplotlib.image.imread(tmp_path / "n" / f)
        assert drawn.shape != plain.shape or not np.array_equal(drawn, plain)


def test_without_coastline_data_maps_are_plain_and_one_warning_says_why(world, tmp_path):
    # issue 13: evaluate failed ("maps with coastlines need Cartopy" / no offline coastlines)
    obs, coarse, results = world
    empty = tmp_path / "empty"
    empty.mkdir()
    real = (_as_real(obs), {n: _as_real(r) for n, r in results.items()}, _as_real(coarse))
    with pytest.warns(report_maps.EsmscaleWarning) as caught:
        evaluate(*real, output_dir=tmp_path / "out", progress=False, coastline_data=empty)
    assert len(caught) == 1
    msg = str(caught[0].message)
    assert msg.startswith("maps drawn without coastlines: no offline GSHHS coastlines")
    assert "python-cartopy-data package with CARTOPY_DATA_DIR=/usr/share/cartopy/data" in msg
    assert "download_coastlines=True or set ESMSCALE_DOWNLOAD_COASTLINES=1" in msg
    for f in ("maps_nearest.png", "maps_noisy_ensemble.png", "bias_maps.png"):
        assert_png(tmp_path / "out" / f)


def test_without_cartopy_maps_are_plain_and_one_warning_says_why(world, tmp_path, monkeypatch):
    obs, _, results = world
    monkeypatch.setitem(sys.modules, "cartopy", None)  # Cartopy not installed
    nearest = {"nearest": _as_real(results["nearest"])}
    with pytest.warns(report_maps.EsmscaleWarning, match=r"Cartopy cannot be imported.*viz"):
        evaluate(_as_real(obs), nearest, output_dir=tmp_path, progress=False)
    assert_png(tmp_path / "maps_nearest.png")
    with pytest.raises(EsmscaleError, match=r"need Cartopy.*esmscale\[viz\]"):
        report_maps.find_coastlines()


def test_synthetic_fields_never_get_coastlines(world, tmp_path):
    obs, coarse, results = world
    assert report_maps.is_synthetic(obs) and report_maps.is_synthetic(coarse)
    assert not report_maps.is_synthetic(_as_real(obs))
    empty = tmp_path / "empty"
    empty.mkdir()
    # no coastlines are looked for, so no warning either (warnings are errors here)
    evaluate(obs, results, coarse, output_dir=tmp_path / "out", progress=False,
             coastline_data=empty)  # fmt: skip
    assert_png(tmp_path / "out" / "maps_nearest.png")


def test_cartopy_download_only_when_allowed(tmp_path, monkeypatch):
    pytest.importorskip("cartopy")
    monkeypatch.delenv(report_maps.DOWNLOAD_ENV, raising=False)
    with pytest.warns(report_maps.EsmscaleWarning, match="without coastlines"):
        assert report_maps.resolve_coastlines(tmp_path) is None
    allowed = report_maps.resolve_coastlines(tmp_path, download=True)
    assert allowed is not None and allowed.download
    monkeypatch.setenv(report_maps.DOWNLOAD_ENV, "1")
    from_env = report_maps.resolve_coastlines(tmp_path)
    assert from_env is not None and from_env.download


def test_dask_input_and_a_calibration_object(world, tmp_path):
    obs, _, results = world
    lazy = {"noisy ensemble": results["noisy ensemble"].chunk({"time": 3, "member": 1})}
    cal = SimpleNamespace(t_grid=np.array([0.3, 0.1]), crps=np.array([0.5, 0.6]))
    out = evaluate(
        obs.chunk({"time": 4}),
        lazy,
        output_dir=tmp_path / "new" / "dir",
        k_star=0.2,
        crps_vs_t=cal,
        progress=False,
        maps=False,
    )
    assert out["crps_vs_t"] == {"t": [0.1, 0.3], "crps": [0.6, 0.5], "t_best": 0.3}
    assert out["k_star"] == 0.2
    assert out["methods"]["noisy ensemble"]["pooled_corr"] is None
    assert (tmp_path / "new" / "dir" / "report.md").is_file()


def test_bad_inputs_are_errors(world, tmp_path):
    obs, coarse, results = world
    with pytest.raises(EsmscaleError, match="non-empty dict"):
        evaluate(obs, {}, output_dir=tmp_path, maps=False, progress=False)
    with pytest.raises(EsmscaleError, match=r"results\['coarse'\] and obs are on different"):
        evaluate(obs, {"coarse": coarse}, output_dir=tmp_path, maps=False, progress=False)
    with pytest.raises(EsmscaleError, match="crps_vs_t must be"):
        evaluate(obs, results, output_dir=tmp_path, crps_vs_t=[0.1], maps=False, progress=False)
    late = results["nearest"].assign_coords(time=results["nearest"].time + np.timedelta64(30, "D"))
    with pytest.raises(EsmscaleError, match="no time in common"):
        evaluate(obs, {"late": late}, output_dir=tmp_path, maps=False, progress=False)


def test_docstring_examples():
    import doctest
    import importlib

    from esmscale.report import drawing, figures, maps, markdown, scores

    evaluate_module = importlib.import_module("esmscale.report.evaluation")

    for module in (evaluate_module, figures, maps, markdown, scores, drawing):
        result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0, module.__name__
        assert result.attempted > 0, module.__name__


def test_field_scores_in_metrics_and_report(world, tmp_path):
    """Index biases and FSS per method equal the metrics functions; the report shows them."""
    obs, coarse, results = world
    out = evaluate(obs, results, coarse, output_dir=tmp_path, progress=False, maps=False)
    fs = out["field_scores"]
    assert fs["skipped"] is None
    assert set(fs["index_bias"]) == set(fs["fss"]) == set(results)
    for name, r in results.items():
        direct = M.index_bias(r.assign_attrs(units="mm day-1"), obs.assign_attrs(units="mm day-1"))
        for index, value in direct.items():
            got = fs["index_bias"][name][index]
            assert (np.isnan(value) and got is None) or got == pytest.approx(value, rel=1e-6)
    f = M.fractions_skill_score(results["nearest"], obs, [1.0], [3])
    assert fs["fss"]["nearest"]["1"]["3"] == pytest.approx(float(f.squeeze()), rel=1e-6)
    assert 0.0 <= fs["fss"]["nearest"]["10"]["1"] <= 1.0
    report = (tmp_path / "report.md").read_text()
    assert "rx1day" in report.lower() and "Fractions skill score" in report


def test_field_scores_say_why_they_are_skipped(tmp_path):
    """Monthly data get no daily indices, and the report says so instead of staying silent."""
    ds = synthetic_precip(16, 16, 6, seed=1)
    monthly = ds.pr.assign_coords(
        time=xr.date_range("2000-01-01", periods=6, freq="MS", use_cftime=True)
    )
    out = evaluate(monthly, {"same": monthly}, output_dir=tmp_path, progress=False, maps=False)
    reason = out["field_scores"]["skipped"]
    assert reason and "daily" in reason
    assert "Not computed" in (tmp_path / "report.md").read_text()
    off = evaluate(
        monthly, {"same": monthly}, output_dir=tmp_path / "off", progress=False, maps=False,
        indices=False, fss=False,
    )  # fmt: skip
    assert off["field_scores"]["skipped"] == "not requested"
