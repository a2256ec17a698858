"""`choreoscope model`: the learned choreography, as a choreography.yaml to edit."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from pathlib import Path

from choreoscope.commands.correlate import declared_choreography, memory_budget
from choreoscope.deadline_floor import model_deadline_floor
from choreoscope.declared_hint import choreography_to_pass
from choreoscope.settings import DEFAULT, SETTINGS, add_flags
from correlator.choreography_file import dump_choreography
from correlator.engine import Correlator
from correlator.findings import last_model_declared
from correlator.model import model_as_choreography
from correlator.model_refresh import learn_from_store
from correlator.thresholds import Thresholds
from instrumentation.errors import ChoreoscopeError
from store import StoreLayout, read_retrying

ORDER = 62

MIN_DEADLINE_DEFAULT = (
    f"the floor the store's correlator last judged with, else "
    f"{SETTINGS['min_deadline'].shown_default}"
)

log = logging.getLogger("choreoscope.model")

DESCRIPTION = """\
Learn the choreography from the stored spans (workflow types, which event
follows which, the consumers of each subject, terminal events, step deadlines)
and print it as choreography.yaml, or write it with --write FILE. Edit it, then
declare it: `choreoscope correlate --watch --choreography choreography.yaml`.
With --choreography, the declared file is merged over what was learned.
Step deadlines are learned with the floor the store's correlator last judged
with (the demo's is 5s) unless --min-deadline says otherwise; it says which.

  choreoscope model                                  # print what was learned
  choreoscope model --write choreography.yaml        # save it, to edit
  choreoscope model --choreography choreography.yaml # declared over learned
"""

HEADER = """\
# The choreography choreoscope learned from {data} at {at:%Y-%m-%d %H:%M} UTC.
# Edit it and pass it to `choreoscope correlate --choreography FILE`: what is
# declared here overrides what is learned. Per workflow: starts_with (its first
# event), terminal (events that end it) and steps: per subject, the consumer
# groups expected to handle it, the events allowed to follow it (`next`), its
# deadline (no progress for longer: stalled) and an optional sla (done later: slow).
# Learned with {floor}.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "model",
        help="print or write the learned choreography as choreography.yaml",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--write", type=Path, metavar="FILE", help="write it to FILE")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    add_flags(
        p, "data", "min_deadline", "choreography", "memory_limit", "log_level",
        docs={"min_deadline": "the floor under learned step deadlines (at least 100ms)"},
        defaults={"min_deadline": MIN_DEADLINE_DEFAULT},
    )  # fmt: skip
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.write and args.write.exists() and not args.force:
        raise ChoreoscopeError(f"{args.write} exists: pass --force to overwrite it")
    if args.choreography is None and last_model_declared(StoreLayout.at(args.data)):
        # the demo, or a correlator run so: learned alone, the workflow types are named
        # after their first events, not as `workflows` and the alerts name them
        log.warning(
            "the correlator judged %s with a declared choreography, and this model "
            "is learned without it: workflow types are named after their first "
            "events, and declared steps and deadlines are missing. Pass "
            "--choreography %s to start from the declared one",
            args.data,
            choreography_to_pass(layout=StoreLayout.at(args.data)),
        )  # fmt: skip
    floor = model_deadline_floor(
        layout=StoreLayout.at(args.data),
        given=args.min_deadline,
        given_by=args.setting_sources.get("min_deadline", DEFAULT),
    )
    thresholds = Thresholds(min_deadline_s=floor.seconds)
    engine = Correlator(data_dir=args.data, thresholds=thresholds, memory=memory_budget(args))
    try:
        # as a correlator learns it: over the segments themselves, each span read
        # where a statement needs it (a copy of every span took several times the
        # memory of a whole pass); listed again if compaction retires one meanwhile
        declared = declared_choreography(args)
        with engine.within_budget():
            model = read_retrying(
                lambda: learn_from_store(
                    engine.con,
                    layout=engine.layout,
                    segments=engine.stored.segments(),
                    thresholds=thresholds,
                    declared=declared,
                )
            )
    finally:
        engine.close()
    if not model.types:
        raise ChoreoscopeError(
            f"no workflow in the store at {engine.layout.root} to learn from: run your "
            "services (or `choreoscope demo`) with the collector first"
        )
    header = HEADER.format(
        data=engine.layout.root, at=dt.datetime.now(dt.UTC), floor=floor.describe()
    )
    text = dump_choreography(model_as_choreography(model, thresholds=thresholds), header=header)
    if args.write:
        if not args.write.parent.is_dir():
            raise ChoreoscopeError(
                f"cannot write {args.write}: the folder {args.write.parent} does not exist"
            )
        tmp = args.write.with_name(f".{args.write.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.write)
        count = len(model.types)
        print(
            f"wrote {args.write}: {count} workflow type{'' if count == 1 else 's'}, "
            f"{floor.describe()}"
        )
    else:
        print(text, end="")
        # the YAML's header says it too; said here where it is seen, off the YAML's way
        print(f"choreoscope model: {floor.describe()}", file=sys.stderr)
    return 0
