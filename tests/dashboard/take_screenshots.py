"""Regenerate the README's screenshots: ``python -m tests.dashboard.take_screenshots``.

Serves ``choreoscope dashboard`` over ``--data`` (default: a fresh fixture store of
the recruitment scenario) and saves the Overview and a workflow's detail page,
as headless Chromium renders them, into docs/screenshots/.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.dashboard.browser_helpers import (
    HeadlessChromium,
    chromium_binary,
    free_port,
    serve_dashboard,
    stop_process,
)
from tests.dashboard.fixture_store import STALLED_WORKFLOW, build_recruitment_store

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def take_screenshots(*, data_dir: Path, workflow_id: str, out_dir: Path) -> list[Path]:
    binary = chromium_binary()
    if binary is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        server = serve_dashboard(data_dir, port=port, log=Path(scratch) / "dashboard.log")
        try:
            with HeadlessChromium(binary=binary, profile_dir=Path(scratch) / "chromium") as b:
                shots = []
                b.open(f"http://127.0.0.1:{port}/")
                b.wait_for_text("Overview", "Worst hops")
                b.wait_for_elements("canvas, svg.marks")
                shots.append(out_dir / "overview.png")
                b.screenshot(shots[-1])
                b.open(f"http://127.0.0.1:{port}/?workflow={workflow_id}")
                b.wait_for_text(workflow_id, "Timeline", "Steps")
                b.wait_for_elements("canvas, svg.marks")
                shots.append(out_dir / "workflow-detail.png")
                b.screenshot(shots[-1])
                b.open(f"http://127.0.0.1:{port}/choreography")
                b.wait_for_text("Choreography map")
                b.wait_for_elements("svg g.node", count=4)
                shots.append(out_dir / "choreography-map.png")
                b.screenshot(shots[-1])
                return shots
        finally:
            stop_process(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, help="a store to show (default: the fixture)")
    parser.add_argument("--workflow", default=STALLED_WORKFLOW, help="the workflow to open")
    parser.add_argument("--out", type=Path, default=SCREENSHOTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = args.data or build_recruitment_store(Path(scratch) / "data").root
        for shot in take_screenshots(data_dir=data, workflow_id=args.workflow, out_dir=args.out):
            print(f"saved {shot}")


if __name__ == "__main__":
    main()
