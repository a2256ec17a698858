"""The command line every sample pipeline shares: ``python -m samples.<pipeline> ...``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from instrumentation.errors import ChoreoscopeError
from samples.faults import FAULTS, parse_fault_rates, showcases_faults
from samples.pipeline import Pipeline, PipelineOptions, PipelineRunner


def build_parser(pipeline: Pipeline, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"python -m samples.{pipeline.name}",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--nats", default="nats://127.0.0.1:4222", help="NATS URL (JetStream on)")
    p.add_argument("--creds", type=Path, default=None, help="NATS credentials file (.creds)")
    p.add_argument("--rate", type=float, default=1.0, help="workflows started per second")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of traffic; then the agents keep serving until stopped (default: forever)",
    )
    p.add_argument(
        "--faults",
        default="none",
        help="share of workflows per fault: none, demo, drop=0.05,hang=0.02, or a YAML file; "
        f"kinds: {', '.join(FAULTS)}",
    )
    p.add_argument("--seed", type=int, default=7, help="decides which workflows get faults")
    p.add_argument(
        "--step-deadline",
        type=float,
        default=5.0,
        help="the correlator's step deadline in seconds (default 5): outages last 2x, slow "
        "steps 0.8x, past the samples' 3 s SLA when the deadline is 4 s or more",
    )
    p.add_argument("--ground-truth", type=Path, default=None, help="append injected faults here")
    p.add_argument("--started-log", type=Path, default=None, help="append started workflows here")
    return p


def pipeline_options(args: argparse.Namespace) -> PipelineOptions:
    """The options the command line gives a pipeline's run."""
    if args.rate <= 0:
        raise ChoreoscopeError("--rate must be positive (workflows per second)")
    return PipelineOptions(
        nats_url=args.nats,
        nats_options={"user_credentials": str(args.creds)} if args.creds else {},
        rate=args.rate,
        duration=args.duration,
        fault_rates=parse_fault_rates(args.faults),
        showcase_faults=showcases_faults(args.faults),
        seed=args.seed,
        step_deadline=args.step_deadline,
        ground_truth=args.ground_truth,
        started_log=args.started_log,
    )


def main(pipeline: Pipeline, description: str, argv: Sequence[str] | None = None) -> int:
    args = build_parser(pipeline, description).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        options = pipeline_options(args)
        asyncio.run(_serve(PipelineRunner(pipeline, options)))
    except ChoreoscopeError as e:
        print(f"{pipeline.name}: error: {e}", file=sys.stderr)
        return 2
    return 0


async def _serve(runner: PipelineRunner) -> None:
    """Run until SIGINT or SIGTERM, then shut the agents down and flush their spans."""
    task = asyncio.create_task(runner.run())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
