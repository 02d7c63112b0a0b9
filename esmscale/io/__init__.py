"""Where results leave and models are stored: safetensors checkpoints (no pickle)."""

from esmscale.io.checkpoint import (
    FORMAT_VERSION,
    file_sha256,
    read_checkpoint,
    write_checkpoint,
)

__all__ = ["FORMAT_VERSION", "file_sha256", "read_checkpoint", "write_checkpoint"]
