"""Emotion data as image folders, `<root>/<class>/*.png|jpg`, converted to the FER2013 CSV format.

Folder names are our classes (Angry, Disgust, Sad, Happy, Surprise) or FER's others (Fear,
Neutral: kept as their FER codes, so they are dropped like FER's rows). Images of any size
are converted to grayscale and resized to 48x48, as FER2013 stores them.

Ordinary photos (not face crops) can be given with a face finder (`FacesOf`, from
`emotion_ai.photos`: this package never imports TensorFlow): each photo's one face becomes the row.
A photo with no face or with several is left out, and `faces_report.json` beside the CSV lists it.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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


FacesOf = Callable[[Path], list[np.ndarray]]
"""A photo's faces, each cropped and aligned as a 48x48 uint8 grayscale face."""
FACES_REPORT = "faces_report.json"


@dataclass
class FacesReport:
    """What face finding made of a folder of photos."""

    photos: int = 0
    kept: int = 0
    no_face: list[str] = field(default_factory=list)
    several_faces: list[str] = field(default_factory=list)


def folder_to_fer_csv(
    root: Path, destination: Path, faces_of: FacesOf | None = None
) -> tuple[str, int]:
    """Writes the folder as `emotion,pixels,Usage` rows (atomically); returns its sha256 and size.
    With `faces_of`, each photo's one face is the row, and `faces_report.json` (a FacesReport)
    is written beside `destination`.

    The fingerprint covers every image's relative path and bytes.
    """
    digest, report = hashlib.sha256(), FacesReport()
    with atomic_path(destination) as partial, open(partial, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for code, path in image_files(root):
            name = str(path.relative_to(root))
            digest.update(name.encode())
            digest.update(path.read_bytes())
            face = load_face(path) if faces_of is None else _one_face(path, name, faces_of, report)
            if face is not None:
                writer.writerow([code, pixel_string(face), "Training"])
        if faces_of is not None:
            _check_faces_found(root, report)
    if faces_of is not None:
        with atomic_path(destination.with_name(FACES_REPORT)) as partial_report:
            partial_report.write_text(json.dumps(asdict(report), indent=1) + "\n")
    return digest.hexdigest(), destination.stat().st_size


def _one_face(path: Path, name: str, faces_of: FacesOf, report: FacesReport) -> np.ndarray | None:
    """The photo's face, or None (and the photo reported) when it has none or several."""
    report.photos += 1
    faces = faces_of(path)
    if len(faces) == 1:
        report.kept += 1
        return faces[0]
    (report.no_face if not faces else report.several_faces).append(name)
    return None


def _check_faces_found(root: Path, report: FacesReport) -> None:
    if report.kept == 0:
        raise DataFormatError(
            root,
            f"has no photo with exactly one face ({len(report.no_face)} without a face, "
            f"{len(report.several_faces)} with several)",
        )
