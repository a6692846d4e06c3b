"""PostgreSQL for tests, as infra/ runs it for MLflow: Debian's `postgresql` package (installed with
apt-get when missing, as Chromium is), a throw-away cluster on 127.0.0.1 and a free port, run as
the `postgres` user when the tests run as root (PostgreSQL refuses root)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from debian_packages import apt_install
from servers import free_port

POSTGRES_PACKAGE = "postgresql"
START_TIMEOUT_S = 60
USER = DATABASE = "mlflow"


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs, Debian's package installed first if missing."""
    if found := _installed():
        return found
    apt_install(POSTGRES_PACKAGE)
    found = _installed()
    assert found, f"apt-get installed {POSTGRES_PACKAGE}, yet no initdb is there"
    return found


def _installed() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(versions[-1]).parent if versions else None


@contextmanager
def postgresql() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 holding an empty `mlflow` database; yields its SQLAlchemy
    URI as infra/ writes it (`postgresql://mlflow:mlflow@host:port/mlflow`). Stopped and removed
    afterwards."""
    programs = postgres_bin()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="emotion-ai-postgres-"))  # not under pytest's 0700 tmp
    if as_postgres:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    try:
        subprocess.run(
            [*as_postgres, str(programs / "initdb"), "-D", str(data), "-U", USER, "-A", "trust"],
            check=True,
            capture_output=True,
        )
        server = subprocess.Popen(
            [*as_postgres, str(programs / "postgres"), "-D", str(data), "-h", "127.0.0.1"]
            + ["-p", str(port), "-k", str(root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_until_ready(programs, port, server)
            subprocess.run(
                [str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER]
                + [DATABASE],
                check=True,
            )
            yield f"postgresql://{USER}:{USER}@127.0.0.1:{port}/{DATABASE}"
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_until_ready(programs: Path, port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    ready = [str(programs / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", USER]
    while subprocess.run(ready, capture_output=True).returncode != 0:
        assert server.poll() is None, f"PostgreSQL exited with {server.returncode}"
        assert time.monotonic() < deadline, f"PostgreSQL did not start within {START_TIMEOUT_S} s"
        time.sleep(0.2)
