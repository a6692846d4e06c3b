"""Emotion data as image folders, `<root>/<class>/*.png|jpg`, converted to the FER2013 CSV format.

Folder names are our classes (Angry, Disgust, Sad, Happy, Surprise) or FER's others (Fear,
Neutral: kept as their FER codes, so they are dropped like FER's rows). Images of any size
are converted to grayscale and resized to 48x48, as FER2013 stores them.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from emotion_ai.data.formats import DataFormatError, pixel_string
from emotion_ai.faces import EMOTIONS, FER_CODE_TO_CLASS, FER_SIZE
from emotion_ai.storage import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_CLASS_TO_FER_CODE = {EMOTIONS[label].lower(): code for code, label in FER_CODE_TO_CLASS.items()}
FOLDER_TO_FER_CODE = {**_CLASS_TO_FER_CODE, "fear": 2, "neutral": 6}


def image_files(root: Path) -> list[tuple[int, Path]]:
    """(FER code, image path) for every image under a known class folder, in a stable order."""
    if not root.is_dir():
        raise DataFormatError(root, "is not a folder of class folders")
    found = []
    for folder in sorted(entry for entry in root.iterdir() if entry.is_dir()):
        code = FOLDER_TO_FER_CODE.get(folder.name.lower())
        if code is None:
            raise DataFormatError(
                root,
                f"folder {folder.name!r} is not an emotion (expected one of "
                f"{sorted(FOLDER_TO_FER_CODE)})",
            )
        found += [
            (code, path)
            for path in sorted(folder.iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
    if not found:
        raise DataFormatError(root, f"holds no {'/'.join(IMAGE_SUFFIXES)} images in class folders")
    return found


def load_face(path: Path) -> np.ndarray:
    """One image file as a 48x48 uint8 grayscale face."""
    try:
        with Image.open(path) as image:
            return np.asarray(
                image.convert("L").resize((FER_SIZE, FER_SIZE), Image.Resampling.BILINEAR)
            )
    except (UnidentifiedImageError, OSError) as error:
        raise DataFormatError(path, f"is not a readable image ({error})") from error


def folder_to_fer_csv(root: Path, destination: Path) -> tuple[str, int]:
    """Writes the folder as `emotion,pixels,Usage` rows (atomically); returns its sha256 and size.

    The fingerprint covers every image's relative path and bytes.
    """
    digest = hashlib.sha256()
    with atomic_path(destination) as partial, open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for code, path in image_files(root):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
            writer.writerow([code, pixel_string(load_face(path)), "Training"])
    return digest.hexdigest(), destination.stat().st_size
