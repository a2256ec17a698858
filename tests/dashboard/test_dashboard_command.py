"""`choreoscope dashboard`: serves the app headless, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import psutil

from choreoscope.cli import build_parser
from choreoscope.commands.dashboard import streamlit_argv
from choreoscope.nats_server import free_port
from choreoscope.settings import resolve
from tests.dashboard.browser_helpers import serve_dashboard, stop_process


def test_default_command_line_binds_loopback_without_usage_stats():
    args = build_parser().parse_args(["dashboard"])
    resolve(args, environ={})
    argv = streamlit_argv(data=args.data, host=args.host, port=args.port)
    assert "--server.address=127.0.0.1" in argv
    assert "--server.port=8501" in argv
    assert "--browser.gatherUsageStats=false" in argv
    assert "--server.headless=true" in argv


def test_host_flag_and_environment_choose_the_address():
    args = build_parser().parse_args(["dashboard", "--host", "0.0.0.0", "--port", "9000"])
    resolve(args, environ={})
    assert "--server.address=0.0.0.0" in streamlit_argv(data=args.data, host=args.host, port=9000)
    args = build_parser().parse_args(["dashboard"])
    resolve(args, environ={"CHOREOSCOPE_HOST": "::1"})
    assert args.host == "::1"


def test_served_dashboard_listens_on_loopback_only(recruitment_store: Path, tmp_path: Path):
    port = free_port()
    log = tmp_path / "dashboard.log"
    process = serve_dashboard(recruitment_store, port=port, log=log)
    try:
        listening = {
            c.laddr.ip
            for c in psutil.Process(process.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200
    finally:
        stop_process(process)
    assert f"http://127.0.0.1:{port}/" in log.read_text()
