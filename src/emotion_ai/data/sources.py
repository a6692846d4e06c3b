"""Fetching input files from wherever their URI points (`locations`), streamed and fingerprinted."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from emotion_ai.data.formats import DataFormatError
from emotion_ai.data.image_folders import FacesOf, folder_to_fer_csv
from emotion_ai.locations import UnreadableLocation, location
from emotion_ai.storage import atomic_path


@dataclass(frozen=True)
class Fingerprint:
    """Where a file came from, and the sha256 of its bytes."""

    source: str
    sha256: str
    size_bytes: int

    def as_dict(self) -> dict:
        return asdict(self)


class _HashingWriter:
    """Writes to a file while hashing what passes through."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.digest, self.size = handle, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)


def fetch(source: str, destination: Path, faces_of: FacesOf | None = None) -> Fingerprint:
    """Copies `source` to `destination` (atomically) and fingerprints its bytes.

    A local folder of class folders of images becomes a FER2013-format CSV (of the one face of
    each photo, with `faces_of`).
    """
    place = location(source)
    folder = place.on_this_machine()
    if folder is not None and folder.is_dir():
        return Fingerprint(source, *folder_to_fer_csv(folder, destination, faces_of))
    with atomic_path(destination) as partial, open(partial, "wb") as handle:
        writer = _HashingWriter(handle)
        try:
            place.stream_to(writer)
        except UnreadableLocation as error:
            raise DataFormatError(source, str(error)) from error
    return Fingerprint(source, writer.digest.hexdigest(), writer.size)
