"""Debian packages a test needs (Chromium, PostgreSQL), installed with apt-get when missing."""

from __future__ import annotations

import os
import subprocess


def apt_install(package: str) -> None:
    """Installs one Debian package, as root or through sudo without a password."""
    as_root = [] if os.geteuid() == 0 else ["sudo", "-n"]
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*as_root, "apt-get", "update", "-qq"], check=True, env=environment)
    subprocess.run(
        [*as_root, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        check=True,
        env=environment,
    )
