"""Real images from an ImageFolder layout, with an optional captions file and foreground masks.

Layout::

    root/
        class_a/img001.jpg
        class_a/img002.png
        class_b/img003.jpg
        captions.csv          # optional: image_path,caption[,person_id]

Class names are the sub-folder names, sorted; labels index them. The captions file is a CSV with
a header row and the columns ``image_path`` (relative to ``root``, with ``/``), ``caption`` and
optionally ``person_id`` (any string; identities are numbered in sorted order). With a captions
file, every row is one image-caption pair (an image may have several rows); without it, every
image is one item with an empty caption. Optional masks (for invariant TTA) lie in a second folder
with the same relative paths and a ``.png`` extension (non-zero pixels: foreground).

Images are resized so that the shorter side is ``image_size`` (bicubic), centre-cropped to a
square and returned as float32 in ``[0, 1]``; masks get the same resize (nearest) and crop. All
images are held in memory, which suits datasets of up to some ten thousand images.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

#: File extensions read as images (case-insensitive).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class FolderData:
    """Images of an ImageFolder tree, with their classes, captions, identities and masks.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, 3, S, S)`` float32 in ``[0, 1]``.
    labels : torch.Tensor
        ``(N,)`` int64 index into ``class_names``.
    class_names : tuple of str
        Sorted sub-folder names.
    paths : tuple of str
        Each item's image path relative to the root (``/``-separated).
    captions : list of str
        One caption per item (empty strings without a captions file).
    identities : torch.Tensor
        ``(N,)`` int64 index into ``person_ids`` (``-1`` without a ``person_id`` column).
    person_ids : tuple of str
        Sorted distinct ``person_id`` values.
    masks : torch.Tensor or None
        ``(N, S, S)`` bool foreground masks when a mask folder was given.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    paths: tuple[str, ...]
    captions: list[str]
    identities: torch.Tensor
    person_ids: tuple[str, ...]
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _square(image: PILImage, size: int, resample: int) -> PILImage:
    """Resize the shorter side to ``size`` and centre-crop."""
    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), resample=resample)
    left, top = (nw - size) // 2, (nh - size) // 2
    return image.crop((left, top, left + size, top + size))


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            rgb = _square(img.convert("RGB"), size, Image.Resampling.BICUBIC)
    except OSError as err:
        raise ValueError(f"load_image_folder: cannot read image {path}: {err}") from err
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0


def _read_mask(path: Path, size: int) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(
            f"load_image_folder: the mask {path} is missing; the mask folder needs one PNG per "
            "image, at the image's relative path with a .png extension"
        )
    with Image.open(path) as img:
        grey = _square(img.convert("L"), size, Image.Resampling.NEAREST)
    return np.asarray(grey) > 0


def _read_captions(file: Path, root: Path, known: set[str]) -> list[tuple[str, str, str | None]]:
    if not file.is_file():
        raise FileNotFoundError(f"load_image_folder: the captions file {file} does not exist")
    with file.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [c for c in ("image_path", "caption") if c not in columns]
        if missing:
            raise ValueError(
                f"load_image_folder: {file} lacks the column(s) {missing}; its header is "
                f"{columns}. Expected a header row image_path,caption[,person_id]"
            )
        has_person = "person_id" in columns
        rows: list[tuple[str, str, str | None]] = []
        for line, row in enumerate(reader, start=2):
            path = (row["image_path"] or "").strip().replace("\\", "/")
            caption = (row["caption"] or "").strip()
            if path not in known:
                raise ValueError(
                    f"load_image_folder: {file} line {line}: image {path!r} is not an image under "
                    f"{root} in a class folder (paths are relative to the root, e.g. "
                    "'class_a/img001.jpg')"
                )
            if not caption:
                raise ValueError(f"load_image_folder: {file} line {line}: the caption is empty")
            person = (row.get("person_id") or "").strip() if has_person else None
            if has_person and not person:
                raise ValueError(f"load_image_folder: {file} line {line}: person_id is empty")
            rows.append((path, caption, person))
    if not rows:
        raise ValueError(f"load_image_folder: {file} has no caption rows")
    return rows


def load_image_folder(
    root: str | Path,
    image_size: int,
    *,
    captions: str | Path | None = None,
    masks: str | Path | None = None,
) -> FolderData:
    r"""Load an ImageFolder tree (``root/class_name/*.jpg``) as square ``[0, 1]`` tensors.

    Parameters
    ----------
    root : str or path
        Folder with one sub-folder per class.
    image_size : int
        Side of the returned square images (the backbone's ``image_size``).
    captions : str or path, optional
        CSV file with a header ``image_path,caption[,person_id]`` (paths relative to ``root``).
        A relative name is looked up in ``root`` first.
    masks : str or path, optional
        Folder of foreground masks with the images' relative paths and a ``.png`` extension.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / name).mkdir()
    ...     Image.new("RGB", (40, 30), "red").save(root / name / "a.png")
    >>> _ = (root / "captions.csv").write_text("image_path,caption\ncat/a.png,a red cat\n")
    >>> data = load_image_folder(root, 16, captions="captions.csv")
    >>> data.class_names, tuple(data.images.shape), data.captions
    (('cat', 'dog'), (1, 3, 16, 16), ['a red cat'])
    """
    base = Path(root).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(f"load_image_folder: {base} is not a directory")
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(
            f"load_image_folder: {base} has no class sub-folders; expected root/class_name/*.jpg"
        )
    files: dict[str, int] = {}
    for label, name in enumerate(classes):
        found = sorted(
            p
            for p in (base / name).rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not found:
            raise ValueError(
                f"load_image_folder: the class folder {base / name} holds no images "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
        files.update({p.relative_to(base).as_posix(): label for p in found})
    if captions is not None:
        file = Path(captions).expanduser()
        if not file.is_absolute() and (base / file).is_file():
            file = base / file
        rows = _read_captions(file, base, set(files))
    else:
        rows = [(path, "", None) for path in files]
    person_ids = tuple(sorted({p for _, _, p in rows if p is not None}))
    person_index = {p: i for i, p in enumerate(person_ids)}
    cache: dict[str, np.ndarray] = {}
    for path, _, _ in rows:
        if path not in cache:
            cache[path] = _read_image(base / path, image_size)
    images = torch.from_numpy(np.stack([cache[path] for path, _, _ in rows]))
    mask_tensor = None
    if masks is not None:
        mask_root = Path(masks).expanduser()
        if not mask_root.is_dir():
            raise FileNotFoundError(f"load_image_folder: the mask folder {mask_root} is missing")
        mask_cache = {
            path: _read_mask((mask_root / path).with_suffix(".png"), image_size) for path in cache
        }
        mask_tensor = torch.from_numpy(np.stack([mask_cache[path] for path, _, _ in rows]))
    return FolderData(
        images=images,
        labels=torch.tensor([files[path] for path, _, _ in rows], dtype=torch.long),
        class_names=tuple(classes),
        paths=tuple(path for path, _, _ in rows),
        captions=[caption for _, caption, _ in rows],
        identities=torch.tensor(
            [person_index[p] if p is not None else -1 for _, _, p in rows], dtype=torch.long
        ),
        person_ids=person_ids,
        masks=mask_tensor,
    )
