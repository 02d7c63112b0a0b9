"""Shared helpers for benchmark scripts: environment record and result writing."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def environment() -> dict[str, Any]:
    import numpy
    import torch
    import xarray

    import esmscale

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "versions": {
            "python": platform.python_version(),
            "esmscale": esmscale.__version__,
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "xarray": xarray.__version__,
        },
    }


def write_results(name: str, results: dict[str, Any], quick: bool) -> Path:
    """Write ``results`` (plus environment) to ``results/NAME[_quick].json`` and print one line."""
    payload = {"benchmark": name, "quick": quick, **environment(), **results}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"{name}_quick.json" if quick else f"{name}.json")
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    print(json.dumps(payload, sort_keys=False))
    return path
