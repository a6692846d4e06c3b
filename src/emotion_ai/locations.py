"""Where a URI points: one object per scheme, chosen once by `location(uri)` (as MLflow picks an
artifact repository per scheme), that every reader, lister and writer of data and served models
uses. A local path (`file://` allowed), `s3://bucket/prefix` (boto3, one reused client per
endpoint) or an `http(s)://` URL, which can only be read.

boto3 rather than fsspec: s3fs pins aiobotocore, which pins botocore to ranges that fight boto3's,
and our S3 needs (list, get, put, delete under a prefix) are a handful of calls.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

CHUNK_BYTES = 1 << 20
HTTP_TIMEOUT_S = 60


class UnreadableLocation(OSError):
    """A location whose bytes cannot be had; the message says why (the caller names the URI)."""


class Location(ABC):
    """A file or a folder (a key prefix on S3) that a URI names."""

    @abstractmethod
    def stream_to(self, sink: BinaryIO) -> None:
        """Writes the bytes of the file here to `sink`, a chunk at a time."""

    @abstractmethod
    def fingerprints(self) -> dict[str, str]:
        """Every file under this folder, keyed by the URI that fetches it, with a digest that
        changes when its bytes do."""

    def on_this_machine(self) -> Path | None:
        """The local path, for what only a local file or folder can do (None elsewhere)."""
        return None


@dataclass(frozen=True)
class LocalLocation(Location):
    path: Path

    def stream_to(self, sink: BinaryIO) -> None:
        if not self.path.is_file():
            raise UnreadableLocation("does not exist or is not a file")
        with open(self.path, "rb") as handle:
            shutil.copyfileobj(handle, sink, CHUNK_BYTES)

    def fingerprints(self) -> dict[str, str]:
        """The sha256 of each file's bytes; hidden files left out."""
        if not self.path.is_dir():
            raise FileNotFoundError(f"the folder {self.path} does not exist")
        return {
            str(path.resolve()): _sha256(path)
            for path in sorted(self.path.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        }

    def on_this_machine(self) -> Path:
        return self.path


@dataclass(frozen=True)
class S3Location(Location):
    bucket: str
    prefix: str

    @property
    def client(self):
        return s3_client()

    def key(self, *parts: object) -> str:
        """The key of `parts` joined under this prefix."""
        return "/".join(str(part) for part in (self.prefix, *parts) if str(part))

    def objects(self, key_prefix: str) -> list[dict]:
        """Every object whose key starts with `key_prefix` (boto3's `Contents` entries: Key, ETag,
        ...), all pages."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=key_prefix
        )
        return [item for page in pages for item in page.get("Contents", [])]

    def upload(self, path: Path, key: str) -> None:
        self.client.upload_file(str(path), self.bucket, key)

    def download(self, key: str, path: Path) -> None:
        self.client.download_file(self.bucket, key, str(path))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def read_text(self, key: str) -> str | None:
        """The object's text, or None when there is no such key."""
        client = self.client
        try:
            return client.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode()
        except client.exceptions.NoSuchKey:
            return None

    def write_text(self, key: str, text: str) -> None:
        """One PUT: S3 readers see the old object or the new one, never half of it."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode())

    def stream_to(self, sink: BinaryIO) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.download_fileobj(self.bucket, self.prefix, sink)
        except (ClientError, BotoCoreError) as error:
            raise UnreadableLocation(f"cannot be fetched from S3 ({error})") from error

    def fingerprints(self) -> dict[str, str]:
        """Each object's ETag, which S3 computes from its bytes."""
        return {
            f"s3://{self.bucket}/{item['Key']}": item["ETag"].strip('"')
            for item in self.objects(f"{self.prefix}/" if self.prefix else "")
            if not item["Key"].endswith("/")
        }


@dataclass(frozen=True)
class HttpsLocation(Location):
    url: str

    def stream_to(self, sink: BinaryIO) -> None:
        import requests

        try:
            with requests.get(self.url, stream=True, timeout=HTTP_TIMEOUT_S) as response:
                response.raise_for_status()
                for chunk in response.iter_content(CHUNK_BYTES):
                    sink.write(chunk)
        except requests.RequestException as error:
            raise UnreadableLocation(f"cannot be fetched over HTTP ({error})") from error

    def fingerprints(self) -> dict[str, str]:
        raise ValueError(f"{self.url} cannot be listed: give a folder or an s3:// prefix")


def location(uri: str | Path) -> Location:
    """The location a URI names: `s3://`, `http(s)://`, else a local path (`file://` allowed)."""
    parsed = urlparse(str(uri))
    if parsed.scheme == "s3":
        return S3Location(parsed.netloc, parsed.path.strip("/"))
    if parsed.scheme in ("http", "https"):
        return HttpsLocation(str(uri))
    return LocalLocation(Path(str(uri).removeprefix("file://")))


def s3_client():
    """The boto3 S3 client of the current endpoint (AWS_ENDPOINT_URL) and credentials, made once."""
    return _s3_client(
        os.environ.get("AWS_ENDPOINT_URL", ""), os.environ.get("AWS_ACCESS_KEY_ID", "")
    )


@cache
def _s3_client(endpoint_url: str, access_key_id: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
