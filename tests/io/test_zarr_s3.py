"""Zarr output to object storage: a real S3-compatible server (moto's) on 127.0.0.1.

The same template + region writes + completion mark + resume as a local folder, a SIGKILLed
``esmscale downscale --output s3://...`` finished by ``--resume`` bitwise equal to a clean run,
and the bad inputs: a protocol without its fsspec backend, missing or refused credentials.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dask
import numpy as np
import pytest
import xarray as xr

from esmscale.cli import main
from esmscale.datasets import synthetic_esm, synthetic_precip
from esmscale.errors import EsmscaleError
from esmscale.io.stores import open_location
from esmscale.io.zarr import chunk_counts, existing_chunks, is_complete, write_zarr
from tests.io.test_zarr import ALL_BLOCKS, COORDER, make_result

pytest.importorskip("s3fs", reason="needs s3fs: pip install 'esmscale[s3]' (in the test extra)")
pytest.importorskip("moto.server", reason="needs moto's server: pip install 'moto[server]'")

import s3fs

REPO = Path(__file__).resolve().parents[2]
BUCKET = "esmscale-test"
KEYS = {"AWS_ACCESS_KEY_ID": "testing-key", "AWS_SECRET_ACCESS_KEY": "testing-SECRET-value"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint():
    """moto's standalone S3 server on 127.0.0.1, started for this module and stopped after."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # at most ~30 s
            assert proc.poll() is None, "moto server exited at start"
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("moto server did not answer on 127.0.0.1 within 30 s")
        yield url
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def s3(endpoint, monkeypatch):
    """Credentials and endpoint in the environment (as a user sets them), a fresh bucket."""
    for key, value in {
        **KEYS,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    if fs.exists(BUCKET):
        fs.rm(BUCKET, recursive=True)
    fs.mkdir(BUCKET)
    yield fs
    s3fs.S3FileSystem.clear_instance_cache()


def _objects(fs, prefix: str) -> dict[str, bytes]:
    """Every chunk object under ``prefix``: key relative to it -> bytes."""
    return {
        key[len(prefix) + 1 :]: fs.cat_file(key)
        for key in fs.find(prefix)
        if "/c/" in key and not key.endswith("zarr.json")
    }


def _local_chunks(store: Path) -> dict[str, bytes]:
    return {
        p.relative_to(store).as_posix(): p.read_bytes()
        for p in store.rglob("*")
        if p.is_file() and "/c/" in "/" + p.relative_to(store).as_posix()
    }


def test_small_write_to_s3_is_complete_and_listed(s3):
    result = make_result().isel(member=slice(0, 1), time=slice(0, 3))  # 2 chunks
    url = f"s3://{BUCKET}/small.zarr"
    summary = write_zarr(result, url, progress=False)
    assert (summary.n_chunks_written, summary.complete) == (2, True)
    assert existing_chunks(url, "pr") == {(0, 0, 0, 0), (0, 0, 0, 1)}
    assert xr.open_zarr(url)["pr"].values.tobytes() == result.values.tobytes()


@pytest.mark.slow
def test_write_and_resume_on_s3_equal_a_local_store(s3, tmp_path):
    url = f"s3://{BUCKET}/out.zarr"
    summary = write_zarr(make_result(), url, progress=False)
    assert summary.store == url
    assert (summary.n_chunks_total, summary.n_chunks_written) == (len(ALL_BLOCKS), len(ALL_BLOCKS))
    assert is_complete(url)
    assert existing_chunks(url, "pr") == ALL_BLOCKS
    local = tmp_path / "out.zarr"
    write_zarr(make_result(), local, progress=False)
    remote = _objects(s3, f"{BUCKET}/out.zarr")
    assert remote == _local_chunks(local)  # same chunk keys, same bytes
    a = xr.open_zarr(url, decode_times=COORDER)
    b = xr.open_zarr(local, decode_times=COORDER)
    assert a["pr"].values.tobytes() == b["pr"].values.tobytes()
    assert a.attrs["esmscale_complete"] is True

    # three chunks lost: resume lists the objects and computes exactly those
    lost = [key for key in sorted(remote) if key.startswith("pr/")][:3]
    for key in lost:
        s3.rm(f"{BUCKET}/out.zarr/{key}")
    assert chunk_counts(url) == (len(ALL_BLOCKS) - 3, len(ALL_BLOCKS))
    counter: list[tuple[int, ...]] = []
    again = write_zarr(make_result(counter=counter), url, resume=True, progress=False)
    assert (again.n_chunks_written, again.n_chunks_skipped) == (3, len(ALL_BLOCKS) - 3)
    assert len(counter) == 3
    assert _objects(s3, f"{BUCKET}/out.zarr") == remote
    # a complete store is refused without resume/overwrite; overwrite rewrites it
    with pytest.raises(EsmscaleError, match="already holds a complete"):
        write_zarr(make_result(), url, progress=False)
    assert write_zarr(make_result(), url, overwrite=True, progress=False).complete


def test_memory_url_round_trip():
    url = "memory://esmscale-test/out.zarr"
    write_zarr(make_result(), url, overwrite=True, progress=False)
    assert is_complete(url)
    assert existing_chunks(url, "pr") == ALL_BLOCKS
    got = xr.open_zarr(url, decode_times=COORDER)["pr"].values
    assert got.tobytes() == make_result().values.tobytes()


@pytest.mark.slow  # a process pool starts and imports the package: ~30 s here
def test_memory_store_written_by_other_processes_is_left_unsealed():
    # worker processes write into their own memory: the chunks never reach this process's
    # store, and a missing chunk would read back as the fill value; listing before the seal
    # catches it, and the store stays resumable
    url = "memory://esmscale-test/elsewhere.zarr"
    result = make_result().isel(member=slice(0, 1), time=slice(0, 3))  # 2 chunks
    with (
        dask.config.set(scheduler="processes", num_workers=1),
        pytest.raises(
            EsmscaleError, match=r"has 0 of 2 chunks in the store, so it is left unsealed"
        ),
    ):
        write_zarr(result, url, overwrite=True, progress=False)
    assert not is_complete(url)
    assert write_zarr(result, url, resume=True, progress=False).n_chunks_written == 2
    assert is_complete(url)


def test_protocol_without_backend_names_the_package():
    with pytest.raises(EsmscaleError, match=r"needs the fsspec backend gcsfs.*pip install gcsfs"):
        write_zarr(make_result(), "gs://bucket/out.zarr", progress=False)
    with pytest.raises(EsmscaleError, match="no filesystem for the protocol 'nosuch'"):
        write_zarr(make_result(), "nosuch://bucket/out.zarr", progress=False)
    with pytest.raises(EsmscaleError, match="local path, so storage_options"):
        write_zarr(make_result(), "out.zarr", storage_options={"anon": True}, progress=False)


def test_missing_credentials_name_what_is_read_and_no_secret(endpoint, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(EsmscaleError) as info:
        write_zarr(make_result(), f"s3://{BUCKET}/out.zarr", progress=False)
    text = str(info.value)
    assert "no credentials were found" in text
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "storage_options"):
        assert name in text
    # a secret given as a storage option is never printed, even when refused
    s3fs.S3FileSystem.clear_instance_cache()
    with pytest.raises(EsmscaleError) as info:
        open_location(f"s3://{BUCKET}/x.zarr", {"secret": "s3cr3t-VALUE", "bogus_option": 1})
    assert "s3cr3t-VALUE" not in str(info.value)
    assert "'bogus_option'" in str(info.value)
    s3fs.S3FileSystem.clear_instance_cache()


def test_missing_bucket_is_refused_before_writing(s3):
    with pytest.raises(EsmscaleError, match="bucket 'no-such-bucket' does not exist"):
        write_zarr(make_result(), "s3://no-such-bucket/out.zarr", progress=False)


def _downscale_argv(model: Path, esm: Path, output: str) -> list[str]:
    return ["downscale", str(esm), "--model", str(model), "--output", output,
            "--members", "2", "--seed", "5", "--chunks", "time=1", "--quiet"]  # fmt: skip


@pytest.mark.slow
def test_cli_killed_mid_write_to_s3_resumes_bitwise_equal(s3, tiny_model_dir, tmp_path, capsys):
    esm = tmp_path / "esm.nc"
    synthetic_esm(synthetic_precip(16, 24, 16, seed=2)).to_netcdf(esm)
    url = f"s3://{BUCKET}/killed.zarr"
    argv = _downscale_argv(tiny_model_dir, esm, url)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "esmscale.cli", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, f"the writer ended before it was killed: {proc.stderr}"
            assert time.monotonic() < deadline, "the writer wrote no chunk in 240 s"
            counts = chunk_counts(url) if s3.exists(f"{BUCKET}/killed.zarr/pr/zarr.json") else None
            if counts is not None and counts[0] >= 4:
                break
            time.sleep(0.1)
    finally:
        proc.kill()  # SIGKILL
        proc.wait()
    written, total = chunk_counts(url)
    assert 4 <= written < total == 16  # time chunks (both members in each)
    assert not is_complete(url)

    assert main([*argv, "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"{total - written} chunks written, {written} already there" in out
    assert is_complete(url)

    clean = f"s3://{BUCKET}/clean.zarr"
    assert main(_downscale_argv(tiny_model_dir, esm, clean)) == 0
    resumed, reference = _objects(s3, f"{BUCKET}/killed.zarr"), _objects(s3, f"{BUCKET}/clean.zarr")
    assert len(reference) >= total
    assert resumed == reference  # every chunk object, bitwise
    a = xr.open_zarr(url)["pr"].values
    b = xr.open_zarr(clean)["pr"].values
    assert a.tobytes() == b.tobytes()
    assert np.isfinite(a).all()
