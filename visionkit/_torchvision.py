"""Import torchvision beside a torch its C++ operators were not built for.

torchvision 0.28/0.29 register fake kernels for ``torchvision::nms`` and ``torchvision::qnms``
without checking that their C++ extension loaded. Where it cannot load (the PyPI wheels are CUDA
builds that need ``libtorch_cuda``, absent from a CPU-only torch), ``import torchvision`` raises
``RuntimeError: operator torchvision::nms does not exist``, and so do open_clip and the
``transformers`` models that import torchvision (``CLIPModel`` among them).

:func:`prepare_torchvision` imports torchvision once, declaring each missing operator's schema
(without any kernel) so that the Python part loads. The detection operators stay unusable: calling
them raises torchvision's own "Couldn't load custom C++ ops" error. Image transforms, which is
all open_clip and transformers' CLIP use, work.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from typing import Any

import torch

#: Keeps the operator declarations alive (a ``torch.library.Library`` drops them when collected).
_DECLARED: list[Any] = []
_STATE = {"prepared": False}


def _declare_missing_op(message: str) -> bool:
    """Declare the torchvision operator named in an import error; False if none is named."""
    found = re.search(r"operator torchvision::(\w+) does not exist", message)
    if found is None:
        return False
    lib = torch.library.Library("torchvision", "FRAGMENT")
    lib.define(f"{found.group(1)}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _DECLARED.append(lib)
    return True


def prepare_torchvision() -> bool:
    """Import torchvision if it is installed, working around missing C++ operators.

    Call it before importing open_clip or a ``transformers`` vision model. It does nothing if
    torchvision is absent or already imported, and only once per process.

    Returns
    -------
    bool
        Whether operators had to be declared (torchvision's C++ extension did not load).

    Examples
    --------
    >>> prepare_torchvision() in (True, False)
    True
    """
    if _STATE["prepared"] or "torchvision" in sys.modules:
        return bool(_DECLARED)
    _STATE["prepared"] = True
    if importlib.util.find_spec("torchvision") is None:
        return False
    for _ in range(8):
        try:
            import torchvision  # noqa: F401
        except RuntimeError as err:
            if not _declare_missing_op(str(err)):
                return bool(_DECLARED)  # another failure: the caller's own import reports it
            continue
        except Exception:  # the caller's own import reports it
            return bool(_DECLARED)
        break
    return bool(_DECLARED)
