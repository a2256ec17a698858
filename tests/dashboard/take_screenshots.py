"""Regenerate the README's screenshots: ``python -m tests.dashboard.take_screenshots``.

Serves ``choreoscope dashboard`` over ``--data`` (default: a fresh fixture store of
the recruitment scenario), or uses a running one (``--url``, e.g. the demo's), and
saves the Overview, a workflow's detail page and the choreography map, as headless
Chromium renders them, into docs/screenshots/.

    choreoscope demo --port 8611 &        # wait a minute or two for faults, then:
    python -m tests.dashboard.take_screenshots --url http://127.0.0.1:8611 --workflow <id>
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from choreoscope.nats_server import free_port
from tests.dashboard.browser_helpers import (
    HeadlessChromium,
    chromium_binary,
    serve_dashboard,
    stop_process,
)
from tests.dashboard.fixture_store import STALLED_WORKFLOW, build_recruitment_store

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def take_screenshots(*, base_url: str, workflow_id: str, out_dir: Path) -> list[Path]:
    """Screenshots of a running dashboard at ``base_url``."""
    binary = chromium_binary()
    if binary is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    with (
        tempfile.TemporaryDirectory() as scratch,
        HeadlessChromium(binary=binary, profile_dir=Path(scratch) / "chromium") as b,
    ):
        shots = []
        b.open(f"{base_url}/")
        b.wait_for_text("Overview", "Worst hops")
        b.wait_for_elements("canvas, svg.marks")
        shots.append(out_dir / "overview.png")
        b.screenshot(shots[-1])
        b.open(f"{base_url}/?workflow={workflow_id}")
        b.wait_for_text(workflow_id, "Timeline", "Steps")
        b.wait_for_elements("canvas, svg.marks")
        b.wait_for_elements("[data-testid='stDataFrame'] canvas")
        time.sleep(1.5)  # the step table lays out its rows after its canvas appears
        shots.append(out_dir / "workflow-detail.png")
        b.screenshot(shots[-1])
        b.open(f"{base_url}/choreography")
        b.wait_for_text("Choreography map")
        b.wait_for_elements("svg g.node", count=4)
        shots.append(out_dir / "choreography-map.png")
        b.screenshot(shots[-1])
        return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, help="a store to show (default: the fixture)")
    parser.add_argument("--url", help="a dashboard already running (e.g. the demo's)")
    parser.add_argument("--workflow", default=STALLED_WORKFLOW, help="the workflow to open")
    parser.add_argument("--out", type=Path, default=SCREENSHOTS)
    args = parser.parse_args()
    if args.url:
        shots = take_screenshots(base_url=args.url, workflow_id=args.workflow, out_dir=args.out)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            # the fixture is served as `choreoscope-data` in the folder it is run from,
            # the default store, so that the sidebar names no path of this machine
            if args.data is None:
                build_recruitment_store(Path(scratch) / "choreoscope-data")
            data = args.data or Path("choreoscope-data")
            server = serve_dashboard(
                data, port=(port := free_port()), log=Path(scratch) / "log",
                cwd=None if args.data else Path(scratch),
            )  # fmt: skip
            try:
                shots = take_screenshots(
                    base_url=f"http://127.0.0.1:{port}", workflow_id=args.workflow, out_dir=args.out
                )
            finally:
                stop_process(server)
    for shot in shots:
        print(f"saved {shot}")


if __name__ == "__main__":
    main()
