import numpy as np
import pytest
from PIL import Image

from emotion_ai.data.datasets import emotion_dataset
from emotion_ai.data.formats import FER_FORMAT, DataFormatError
from emotion_ai.data.sources import fetch
from emotion_ai.data.validation import validate_file
from emotion_ai.settings import SplitSettings, ValidationSettings


def _write_faces(root, folder, count, size, mode="RGB", suffix=".png"):
    (root / folder).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(folder))
    for index in range(count):
        pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).convert(mode).save(root / folder / f"{index}{suffix}")


def test_image_folders_become_a_valid_fer_csv(tmp_path):
    root = tmp_path / "faces"
    _write_faces(root, "happy", 3, (120, 90))
    _write_faces(root, "Sad", 2, (48, 48), mode="L", suffix=".jpg")
    _write_faces(root, "neutral", 1, (64, 64))
    fingerprint = fetch(str(root), tmp_path / "fer.csv")
    assert len(fingerprint.sha256) == 64 and fingerprint.source == str(root)
    table, _ = validate_file(
        tmp_path / "fer.csv", FER_FORMAT, ValidationSettings(min_rows_per_class=0)
    )
    assert sorted(table.rows["emotion"].astype(int)) == [3, 3, 3, 4, 4, 6]
    dataset = emotion_dataset(table, SplitSettings(val_fraction=0, test_fraction=0), {})
    assert sorted(dataset.targets.tolist()) == [2, 2, 3, 3, 3] and dataset.images.shape[1:] == (
        48,
        48,
    )


def test_unreadable_image_names_the_file(tmp_path):
    root = tmp_path / "faces"
    _write_faces(root, "angry", 1, (48, 48))
    (root / "angry" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataFormatError, match=r"broken.png.*not a readable image"):
        fetch(str(root), tmp_path / "fer.csv")
    assert not list(tmp_path.glob("fer.csv*"))


def test_unknown_class_folder_is_named(tmp_path):
    _write_faces(tmp_path / "faces", "bored", 1, (48, 48))
    with pytest.raises(DataFormatError, match="'bored' is not an emotion"):
        fetch(str(tmp_path / "faces"), tmp_path / "fer.csv")
