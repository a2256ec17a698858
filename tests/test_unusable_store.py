"""A store the command cannot write, or on a full disk: the path, and what to do."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from choreoscope.nats_server import free_port
from store import StoreLayout


def bound_by_file_modes(argv: list[str]) -> list[str]:
    """``argv`` run so that file modes bind it: root gives up its capabilities first."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("setpriv") is None:
        pytest.skip("root ignores file modes, and setpriv is missing to drop that")
    return ["setpriv", "--bounding-set=-all", "--inh-caps=-all", *argv]


def test_up_on_a_store_it_cannot_write_names_the_folder_and_what_to_do(tmp_path: Path) -> None:
    # "choreoscope: error: Operation not permitted: .../nats", and no word of a fix;
    # as after a first `sudo choreoscope up` left the store's nats folder root's
    data = tmp_path / "data"
    (data / "nats").mkdir(parents=True)
    (data / "nats").chmod(0o555)
    try:
        up = subprocess.run(
            bound_by_file_modes(
                [sys.executable, "-m", "choreoscope.cli", "up", "--no-dashboard",
                 "--no-otlp-http", "--nats-port", str(free_port()), "--data", str(data)]
            ),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        (data / "nats").chmod(0o755)
    assert up.returncode == 2, up.stdout + up.stderr
    assert up.stdout == ""
    assert f"Permission denied: {data / 'nats' / 'ports'}: give the user" in up.stderr
    assert f"read and write access to {data / 'nats'} (see its owner" in up.stderr
    assert "pass --data with a directory it can write (or set CHOREOSCOPE_DATA)" in up.stderr


FILL_THEN_CORRELATE = """
mount -t tmpfs -o size=4m tmpfs "$1" && cp -a "$2" "$1/data" || exit 99
head -c 8M /dev/zero > "$1/filler" 2>/dev/null
exec "$3" -m choreoscope.cli correlate --once --data "$1/data"
"""


def on_a_disk_of_its_own(script: str, *args: str) -> list[str]:
    """``sh -c script`` in a mount namespace of its own, where it may mount a tmpfs."""
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare.append("--map-root-user")
    if shutil.which("unshare") is None:
        pytest.skip("unshare is missing to make a small disk with")
    if subprocess.run([*unshare, "true"], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("no mount namespace here to make a small disk in")
    return [*unshare, "sh", "-c", script, "sh", *args]


@pytest.mark.skipif(sys.platform != "linux", reason="a small disk of its own needs Linux")
def test_correlate_once_on_a_full_disk_names_the_store_and_says_to_free_space(
    store_layout: StoreLayout, tmp_path: Path
) -> None:
    # "choreoscope: error: No space left on device", and not where
    disk = tmp_path / "disk"
    disk.mkdir()
    result = subprocess.run(
        on_a_disk_of_its_own(FILL_THEN_CORRELATE, str(disk), str(store_layout.root),
                             sys.executable),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no space left on the device holding {disk / 'data'}" in result.stderr
    assert "free space there" in result.stderr
    assert "Traceback" not in result.stderr
