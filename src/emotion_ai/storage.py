"""Where bytes live: atomic local writes, and the one place that tells local paths, `s3://` and
`https://` URIs apart, with one reused S3 client per endpoint.

boto3 rather than fsspec: s3fs pins aiobotocore, which pins botocore to ranges that fight boto3's,
and our S3 needs (list, get, put, delete under a prefix) are a handful of calls.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from functools import cache
from pathlib import Path
from urllib.parse import urlparse


class Scheme(str, Enum):
    LOCAL = "local"
    S3 = "s3"
    HTTPS = "https"


def scheme(uri: str | Path) -> Scheme:
    """Which storage a URI names: `s3://`, `http(s)://`, else a local path (`file://` allowed)."""
    found = urlparse(str(uri)).scheme
    if found == "s3":
        return Scheme.S3
    if found in ("http", "https"):
        return Scheme.HTTPS
    return Scheme.LOCAL


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` as (bucket, `some/key`)."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.strip("/")


def s3_client():
    """The boto3 S3 client of the current endpoint (AWS_ENDPOINT_URL) and credentials, made once."""
    return _s3_client(
        os.environ.get("AWS_ENDPOINT_URL", ""), os.environ.get("AWS_ACCESS_KEY_ID", "")
    )


@cache
def _s3_client(endpoint_url: str, access_key_id: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or None)


def s3_objects(bucket: str, prefix: str) -> list[dict]:
    """Every object under a key prefix of a bucket (boto3's `Contents` entries: Key, ETag, ...),
    all pages."""
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item for page in pages for item in page.get("Contents", [])]


def remove_path(path: Path) -> None:
    """Removes a file or a whole folder, whichever `path` is (nothing when it is gone)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


PARTIAL_MARK = ".partial-"
"""In the name of everything `atomic_path` is still writing (or left behind when killed)."""


def partials_under(root: Path) -> Iterator[Path]:
    """Files and folders under `root` that `atomic_path` began and never renamed into place."""
    return root.rglob(f".*{PARTIAL_MARK}*")


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A path beside `path` to write a file or folder to; renamed onto `path` when the block
    succeeds and removed when it fails, so readers see the whole result or none of it. The partial
    name is hidden and unique, so concurrent writers never meet and TF Serving never takes it for a
    version."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}{PARTIAL_MARK}{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield partial
    except BaseException:
        remove_path(partial)
        raise
    os.replace(partial, path)


def write_text_atomically(path: Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text)


def write_json(path: Path, content: dict) -> None:
    """Writes `content` as JSON atomically (readers never see half a file). Only JSON's own types
    are taken: anything else (a NumPy value, a path) is a TypeError, never silently turned into
    text."""
    write_text_atomically(path, json.dumps(content, indent=2))


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())
