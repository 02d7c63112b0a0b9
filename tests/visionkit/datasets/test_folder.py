"""load_image_folder on small PNG trees written by the tests."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from visionkit.datasets import load_image_folder


def write_tree(root: Path) -> None:
    """Two classes; each image is one flat colour (left) next to black (right), 40 x 30."""
    colours = {"cat": [(255, 0, 0), (0, 255, 0)], "dog": [(0, 0, 255)]}
    for name, cols in colours.items():
        (root / name).mkdir(parents=True)
        for i, c in enumerate(cols):
            arr = np.zeros((30, 40, 3), np.uint8)
            arr[:, :20] = c
            Image.fromarray(arr).save(root / name / f"{i}.png")
    (root / "notes.txt").write_text("not a class folder")
    (root / "captions.csv").write_text(
        "image_path,caption,person_id\n"
        "cat/0.png,a red cat,p7\n"
        "cat/0.png,the red one,p7\n"
        "dog/0.png,a blue dog,p2\n"
    )


def test_images_labels_and_crop(tmp_path):
    write_tree(tmp_path)
    data = load_image_folder(tmp_path, 10)
    assert data.class_names == ("cat", "dog")
    assert data.paths == ("cat/0.png", "cat/1.png", "dog/0.png")
    assert data.labels.tolist() == [0, 0, 1]
    assert data.images.shape == (3, 3, 10, 10)
    assert data.images.dtype == torch.float32
    assert data.captions == ["", "", ""]
    assert data.identities.tolist() == [-1, -1, -1]
    assert data.masks is None
    # 40 x 30 -> 13 x 10 then a centred 10 x 10 crop: column 0 is colour, column 9 is black
    assert torch.allclose(data.images[0, :, 5, 0], torch.tensor([1.0, 0.0, 0.0]), atol=0.02)
    assert torch.allclose(data.images[2, :, 5, 0], torch.tensor([0.0, 0.0, 1.0]), atol=0.02)
    assert float(data.images[:, :, :, 9].abs().max()) < 0.02


def test_captions_identities_and_masks(tmp_path):
    write_tree(tmp_path)
    mask_root = tmp_path.parent / "masks"
    for rel in ("cat/0.png", "cat/1.png", "dog/0.png"):
        (mask_root / rel).parent.mkdir(parents=True, exist_ok=True)
        m = np.zeros((30, 40), np.uint8)
        m[:, :20] = 255  # the coloured half is the foreground
        Image.fromarray(m).save(mask_root / rel)
    data = load_image_folder(tmp_path, 10, captions="captions.csv", masks=mask_root)
    assert len(data) == 3
    assert data.paths == ("cat/0.png", "cat/0.png", "dog/0.png")
    assert data.captions == ["a red cat", "the red one", "a blue dog"]
    assert data.person_ids == ("p2", "p7")
    assert data.identities.tolist() == [1, 1, 0]
    assert data.labels.tolist() == [0, 0, 1]
    assert torch.equal(data.images[0], data.images[1])
    assert data.masks is not None
    assert data.masks.shape == (3, 10, 10)
    assert data.masks.dtype == torch.bool
    assert bool(data.masks[:, :, 0].all())
    assert not bool(data.masks[:, :, 9].any())


def test_errors_say_what_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_image_folder(tmp_path / "missing", 8)
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path / "empty_root", 8)
    root = tmp_path / "data"
    write_tree(root)
    (root / "bird").mkdir()
    with pytest.raises(ValueError, match="bird holds no images"):
        load_image_folder(root, 8)
    (root / "bird").rmdir()
    bad = tmp_path / "bad.csv"
    bad.write_text("path,text\ncat/0.png,a cat\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['image_path', 'caption'\]"):
        load_image_folder(root, 8, captions=bad)
    bad.write_text("image_path,caption\ncat/9.png,a cat\n")
    with pytest.raises(ValueError, match=r"line 2: image 'cat/9\.png' is not an image"):
        load_image_folder(root, 8, captions=bad)
    bad.write_text("image_path,caption\ncat/0.png,\n")
    with pytest.raises(ValueError, match="line 2: the caption is empty"):
        load_image_folder(root, 8, captions=bad)
    with pytest.raises(FileNotFoundError, match="captions file"):
        load_image_folder(root, 8, captions=tmp_path / "none.csv")
    (tmp_path / "masks").mkdir()
    with pytest.raises(FileNotFoundError, match=r"mask .*cat/0.png is missing"):
        load_image_folder(root, 8, masks=tmp_path / "masks")
    (root / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read image"):
        load_image_folder(root, 8)
