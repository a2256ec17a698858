"""Serving the dashboard for real and driving headless Chromium over DevTools."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import connect as ws_connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until_healthy(port: int, *, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the dashboard exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the dashboard did not answer on port {port} within {timeout} s")


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def serve_dashboard(
    data_dir: Path, *, port: int, log: Path, cwd: Path | None = None
) -> subprocess.Popen:
    """``choreoscope dashboard`` as a user runs it (from ``cwd``), in its own process
    group."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "choreoscope.cli",
                "dashboard",
                "--data",
                str(data_dir),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )
    wait_until_healthy(port, process=process)
    return process


class HeadlessChromium:
    """Debian's chromium, headless, driven over the DevTools protocol (one page)."""

    def __init__(self, *, binary: str, profile_dir: Path, width: int = 1400, height: int = 900):
        self.binary = binary
        self.profile_dir = profile_dir
        self.size = (width, height)
        self._ids = itertools.count(1)
        self._process: subprocess.Popen | None = None
        self._ws: Any = None
        self._exit_stack = contextlib.ExitStack()

    def __enter__(self) -> HeadlessChromium:
        self.profile_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            [
                self.binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={self.profile_dir}",
                "--remote-debugging-port=0",
                f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        port = self._devtools_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            page = next(t for t in json.load(r) if t["type"] == "page")
        self._ws = self._exit_stack.enter_context(
            ws_connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        )
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.size[0],
            height=self.size[1],
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    def _devtools_port(self) -> int:
        assert self._process is not None and self._process.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self._process.stderr.readline().decode(errors="replace")
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if match:
                return int(match.group(1))
            if not line and self._process.poll() is not None:
                break
        raise AssertionError("chromium did not start its DevTools endpoint")

    def __exit__(self, *exc: object) -> None:
        self._exit_stack.close()
        if self._process is not None:
            stop_process(self._process)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=30))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise AssertionError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def page_text(self) -> str:
        result = self.call(
            "Runtime.evaluate", expression="document.body ? document.body.innerText : ''"
        )
        return str(result.get("result", {}).get("value", ""))

    def wait_for_text(self, *texts: str, timeout: float = 45.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.page_text()
            if all(t in text for t in texts):
                return text
            time.sleep(0.3)
        raise AssertionError(f"the page never showed {texts!r}; it showed:\n{text[:2000]}")

    def wait_for_elements(self, selector: str, *, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until ``count`` elements match ``selector`` (e.g. drawn charts)."""
        expression = f"document.querySelectorAll({json.dumps(selector)}).length"
        deadline = time.monotonic() + timeout
        found = 0
        while time.monotonic() < deadline:
            found = int(self.call("Runtime.evaluate", expression=expression)["result"]["value"])
            if found >= count:
                return
            time.sleep(0.3)
        raise AssertionError(f"only {found} of {count} {selector!r} elements appeared")

    def click_first_table_row(self, *, header_px: int = 35, row_px: int = 35) -> None:
        """Click the selection cell of the first row of the page's first table."""
        rect = self.call(
            "Runtime.evaluate",
            expression="JSON.stringify(document.querySelector("
            "\"[data-testid='stDataFrame']\").getBoundingClientRect())",
            returnByValue=True,
        )["result"]["value"]
        box = json.loads(rect)
        x, y = box["x"] + 12, box["y"] + header_px + row_px / 2
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def current_url(self) -> str:
        result = self.call("Runtime.evaluate", expression="window.location.href")
        return str(result["result"]["value"])

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


def chromium_binary() -> str | None:
    """Debian's ``chromium`` on PATH (``.ci/run`` installs it), or None."""
    return shutil.which("chromium")
