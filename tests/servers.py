"""Real servers for tests, started on 127.0.0.1 and stopped afterwards."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

START_TIMEOUT_S = 90
SWAP_TIMEOUT_S = 60
SEAWEEDFS_STOP_TIMEOUT_S = 3
"""A graceful SeaweedFS stop takes about 25 s; its scratch data is thrown away anyway."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout_s: float = START_TIMEOUT_S) -> None:
    """Polls `url` until it answers (any HTTP status) or the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            requests.get(url, timeout=2)
            return
        except (requests.ConnectionError, requests.Timeout):  # not listening, or still starting
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@contextmanager
def running(
    command: list[str],
    url: str,
    log: Path,
    env: dict[str, str] | None = None,
    stop_timeout_s: float = 30,
) -> Iterator[subprocess.Popen]:
    """The server `command`, up once `url` answers; stopped with SIGTERM, killed after
    `stop_timeout_s`."""
    with open(log, "wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until_up(url, process)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=stop_timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_command(base: str | Path, port: int, *options: str) -> list[str]:
    """`emotion-ai serve` of the layout under `base` on 127.0.0.1:`port` (REST only unless `options`
    give a gRPC `--port`), with further options."""
    return [
        sys.executable, "-m", "emotion_ai", "serve", "--model-base-path", str(base),
        "--rest-api-port", str(port), "--port", "0", *options,
    ]  # fmt: skip


def served_version(model_url: str) -> str:
    """The version a TF Serving status route (`/v1/models/<name>`) says it serves by default."""
    return requests.get(model_url, timeout=5).json()["model_version_status"][0]["version"]


def wait_for_version(model_url: str, version: str, timeout_s: float = SWAP_TIMEOUT_S) -> None:
    """Polls the status route until the model serves `version`; fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while served_version(model_url) != version:
        assert time.monotonic() < deadline, (
            f"still serving {served_version(model_url)}, expected {version}"
        )
        time.sleep(0.25)


def wait_for_status(model_url: str, version: str, timeout_s: float = SWAP_TIMEOUT_S) -> dict:
    """Polls the status route until it lists `version` (served or not); returns its entry."""
    deadline = time.monotonic() + timeout_s
    while True:
        statuses = requests.get(model_url, timeout=5).json()["model_version_status"]
        listed = [status for status in statuses if status["version"] == version]
        if listed:
            return listed[0]
        assert time.monotonic() < deadline, f"version {version} not listed: {statuses}"
        time.sleep(0.25)


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _unused_ports(count: int) -> list[int]:
    """Ports whose +10000 gRPC neighbours are free too (SeaweedFS' convention)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port + 10000 < 65536 and port not in ports and _is_free(port + 10000):
            ports.append(port)
    return ports


@contextmanager
def seaweedfs_s3(data_dir: Path) -> Iterator[str]:
    """A real S3 endpoint (SeaweedFS master, volume, filer and S3 gateway) on 127.0.0.1."""
    with seaweedfs(data_dir) as (endpoint, _):
        yield endpoint


@contextmanager
def seaweedfs(data_dir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """`seaweedfs_s3`, with the server's process (to stop it for a while, say)."""
    weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    master, volume, filer, s3 = _unused_ports(4)
    command = [
        weed,
        "server",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3}",
        "-s3.port.iceberg=0",  # off: its fixed default ports would collide between test workers
        "-s3.port.lance=0",
        # Each bucket takes a handful of volumes on its first write; the default 8 run out at two.
        "-volume.max=64",
        "-master.volumeSizeLimitMB=256",
    ]
    endpoint = f"http://127.0.0.1:{s3}"
    log = data_dir / "weed.log"
    with running(command, endpoint, log, stop_timeout_s=SEAWEEDFS_STOP_TIMEOUT_S) as process:
        _wait_for_buckets(endpoint)
        yield endpoint, process


S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""The credentials every test SeaweedFS accepts, as boto3 reads them from the environment."""


def s3_client(endpoint: str):
    """A boto3 client of the test SeaweedFS at `endpoint`, whatever this process's environment."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=S3_ENVIRONMENT["AWS_DEFAULT_REGION"],
        aws_access_key_id=S3_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
    )


def _wait_for_buckets(endpoint: str) -> None:
    """The S3 gateway answers before the filer behind it is ready: wait until a bucket can be
    made."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    client = s3_client(endpoint)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            client.create_bucket(Bucket="readiness-probe")
            client.delete_bucket(Bucket="readiness-probe")
            return
        except (ClientError, EndpointConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
