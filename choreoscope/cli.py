"""The ``choreoscope`` command line."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence

from choreoscope import commands
from choreoscope.os_error_advice import explain_os_error
from choreoscope.settings import resolve
from choreoscope.unknown_options import refuse_unknown_options
from instrumentation.errors import ChoreoscopeError

DESCRIPTION = """\
End-to-end visibility for choreographed systems on NATS.

Start with `choreoscope demo`: an embedded nats-server, sample agent pipelines
with faults, the collector, the correlator and the dashboard, in one command.
Every setting can also come from a CHOREOSCOPE_<NAME> environment variable.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="choreoscope",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = [
        importlib.import_module(f"choreoscope.commands.{m.name}")
        for m in pkgutil.iter_modules(commands.__path__)
    ]
    for module in sorted(modules, key=lambda m: m.ORDER):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    refuse_unknown_options(parser=parser, args=args, extras=extras)
    try:
        resolve(args)
        level = getattr(args, "log_level", "INFO")
        logging.basicConfig(
            level=str(level).upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        return int(args.handler(args) or 0)
    except ChoreoscopeError as e:
        print(f"choreoscope: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`| head`): stop quietly, as Unix tools do, and keep
        # Python from complaining again when it flushes standard output at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as e:
        # a path given that cannot be read or written: no traceback (--log-level
        # DEBUG shows one)
        logging.getLogger(__name__).debug("OS error", exc_info=True)
        advice = explain_os_error(e, data=getattr(args, "data", None))
        print(f"choreoscope: error: {advice}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
