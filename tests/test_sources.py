"""Sources: local, s3:// on a real SeaweedFS server, https:// on a local HTTP server;
fingerprints."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial

import boto3
import pytest

from emotion_ai.data.formats import DataFormatError
from emotion_ai.data.sources import fetch


@pytest.fixture(scope="module")
def http_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_local_file_is_copied_and_fingerprinted(fer_csv, tmp_path):
    fingerprint = fetch(str(fer_csv), tmp_path / "copy.csv")
    assert fingerprint.sha256 == hashlib.sha256(fer_csv.read_bytes()).hexdigest()
    assert (tmp_path / "copy.csv").read_bytes() == fer_csv.read_bytes()


def test_missing_local_file(tmp_path):
    with pytest.raises(DataFormatError, match="does not exist"):
        fetch(str(tmp_path / "nope.csv"), tmp_path / "out.csv")
    assert not list(tmp_path.iterdir())


def test_s3_object_is_streamed_and_fingerprinted(s3_endpoint, fer_csv, tmp_path):
    boto3.client("s3").create_bucket(Bucket="faces")
    boto3.client("s3").upload_file(str(fer_csv), "faces", "fer/fer2013.csv")
    fingerprint = fetch("s3://faces/fer/fer2013.csv", tmp_path / "fer.csv")
    assert fingerprint.sha256 == hashlib.sha256(fer_csv.read_bytes()).hexdigest()
    assert fingerprint.size_bytes == fer_csv.stat().st_size


def test_s3_missing_key_names_the_object_and_leaves_nothing(s3_endpoint, tmp_path):
    boto3.client("s3").create_bucket(Bucket="empty")
    with pytest.raises(DataFormatError, match=r"s3://empty/missing.csv.*cannot be fetched from S3"):
        fetch("s3://empty/missing.csv", tmp_path / "out.csv")
    assert not list(tmp_path.iterdir())


def test_https_style_url_is_streamed(http_root, fer_csv, tmp_path):
    root, url = http_root
    (root / "fer.csv").write_bytes(fer_csv.read_bytes())
    fingerprint = fetch(f"{url}/fer.csv", tmp_path / "fer.csv")
    assert fingerprint.sha256 == hashlib.sha256(fer_csv.read_bytes()).hexdigest()


def test_http_404_names_the_url_and_leaves_nothing(http_root, tmp_path):
    _, url = http_root
    with pytest.raises(DataFormatError, match=r"missing.csv.*404"):
        fetch(f"{url}/missing.csv", tmp_path / "out.csv")
    assert not list(tmp_path.iterdir())
