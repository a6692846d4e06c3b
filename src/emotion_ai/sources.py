"""Fetching input files from local paths, s3:// (boto3) and https:// URLs, streamed and fingerprinted."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import requests

from emotion_ai.data_formats import DataFormatError
from emotion_ai.image_folders import folder_to_fer_csv

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
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    parsed = urlparse(source)
    try:
        boto3.client("s3").download_fileobj(parsed.netloc, parsed.path.lstrip("/"), writer)
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


def fetch(source: str, destination: Path) -> Fingerprint:
    """Copies `source` to `destination` (atomically) and fingerprints its bytes.

    A local folder of class folders of images becomes a FER2013-format CSV.
    """
    scheme = urlparse(source).scheme
    if not scheme and Path(source).is_dir():
        destination.parent.mkdir(parents=True, exist_ok=True)
        return Fingerprint(source, *folder_to_fer_csv(Path(source), destination))
    copy = {"s3": _copy_s3, "https": _copy_https, "http": _copy_https}.get(scheme, _copy_local)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    try:
        with open(partial, "wb") as handle:
            writer = _HashingWriter(handle)
            copy(source, writer)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, destination)
    return Fingerprint(source, writer.digest.hexdigest(), writer.size)
