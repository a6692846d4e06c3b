"""Fetching input files from local paths, s3:// (boto3) and https:// URLs, streamed and
fingerprinted."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import requests

from emotion_ai.data.formats import DataFormatError
from emotion_ai.data.image_folders import FacesOf, folder_to_fer_csv
from emotion_ai.storage import Scheme, atomic_path, s3_client, scheme, split_s3_uri

CHUNK_BYTES = 1 << 20
HTTP_TIMEOUT_S = 60


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


def _copy_local(source: str, writer: _HashingWriter) -> None:
    path = Path(source.removeprefix("file://"))
    if not path.is_file():
        raise DataFormatError(source, "does not exist or is not a file")
    with open(path, "rb") as handle:
        shutil.copyfileobj(handle, writer, CHUNK_BYTES)


def _copy_s3(source: str, writer: _HashingWriter) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        s3_client().download_fileobj(*split_s3_uri(source), writer)
    except (ClientError, BotoCoreError) as error:
        raise DataFormatError(source, f"cannot be fetched from S3 ({error})") from error


def _copy_https(source: str, writer: _HashingWriter) -> None:
    try:
        with requests.get(source, stream=True, timeout=HTTP_TIMEOUT_S) as response:
            response.raise_for_status()
            for chunk in response.iter_content(CHUNK_BYTES):
                writer.write(chunk)
    except requests.RequestException as error:
        raise DataFormatError(source, f"cannot be fetched over HTTP ({error})") from error


def fetch(source: str, destination: Path, faces_of: FacesOf | None = None) -> Fingerprint:
    """Copies `source` to `destination` (atomically) and fingerprints its bytes.

    A local folder of class folders of images becomes a FER2013-format CSV (of the one face of
    each photo, with `faces_of`).
    """
    kind = scheme(source)
    if kind is Scheme.LOCAL and Path(source).is_dir():
        return Fingerprint(source, *folder_to_fer_csv(Path(source), destination, faces_of))
    copy = {Scheme.S3: _copy_s3, Scheme.HTTPS: _copy_https, Scheme.LOCAL: _copy_local}[kind]
    with atomic_path(destination) as partial, open(partial, "wb") as handle:
        writer = _HashingWriter(handle)
        copy(source, writer)
    return Fingerprint(source, writer.digest.hexdigest(), writer.size)
