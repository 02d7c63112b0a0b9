"""Files in and out: safetensors checkpoints (no pickle), Zarr output with resume, and
intake-esm catalogs (:mod:`esmscale.io.catalog`, loaded safely; intake-esm itself is imported
only when a catalog is read).
"""

from esmscale.io.checkpoint import (
    FORMAT_VERSION,
    file_sha256,
    read_checkpoint,
    write_checkpoint,
)
from esmscale.io.zarr import WriteSummary, existing_chunks, is_complete, write_zarr

__all__ = [
    "FORMAT_VERSION",
    "WriteSummary",
    "existing_chunks",
    "file_sha256",
    "is_complete",
    "read_checkpoint",
    "write_checkpoint",
    "write_zarr",
]
