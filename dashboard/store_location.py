"""Which store the dashboard shows.

The front door (`choreoscope dashboard --data DIR`) passes the directory as a
script argument: ``streamlit run dashboard/app.py -- --data DIR``. Tests set
it in session state instead, under ``DATA_DIR_KEY``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import streamlit as st

DATA_DIR_KEY = "choreoscope_data_dir"
DEFAULT_DATA_DIR = "choreoscope-data"


def current_data_dir() -> str:
    """The absolute path of the store this session shows."""
    chosen = st.session_state.get(DATA_DIR_KEY)
    if chosen is None:
        chosen = _script_argument_data_dir(sys.argv[1:]) or DEFAULT_DATA_DIR
    return str(Path(chosen).expanduser().resolve())


def _script_argument_data_dir(argv: list[str]) -> str | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data", default=None)
    known, _ = parser.parse_known_args(argv)
    return known.data
