"""The README's configuration table, generated from ``choreoscope.settings`` so it never drifts.

    python -m choreoscope.settings_table            # rewrite the table in README.md
    python -m choreoscope.settings_table --check    # exit 1 if README.md is out of date

The table sits between ``<!-- settings:start -->`` and ``<!-- settings:end -->``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from choreoscope.settings import SETTINGS

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
REGENERATE = "python -m choreoscope.settings_table"
README = Path(__file__).resolve().parents[1] / "README.md"


def commands_using() -> dict[str, list[str]]:
    """Setting name → the subcommands that take its flag."""
    from choreoscope.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    using: dict[str, list[str]] = {name: [] for name in SETTINGS}
    for command, subparser in sub.choices.items():
        for action in subparser._actions:
            # only flags added from the table read the environment variable
            setting = SETTINGS.get(action.dest)
            if setting is not None and setting.env in (action.help or ""):
                using[action.dest].append(command)
    return using


def markdown_table() -> str:
    using = commands_using()
    rows = [
        "| variable | flag | default | what it sets | used by |",
        "|---|---|---|---|---|",
    ]
    for name, setting in SETTINGS.items():
        commands = ", ".join(f"`{c}`" for c in sorted(using[name])) or "—"
        rows.append(
            f"| `{setting.env}` | `{setting.flag}` | `{setting.shown_default}` "
            f"| {setting.doc.replace('|', '/')} | {commands} |"
        )
    return "\n".join(rows)


def with_table(text: str) -> str:
    """``text`` (the README) with its settings block replaced by the current table."""
    start, end = text.index(START) + len(START), text.index(END)
    return text[:start] + "\n" + markdown_table() + "\n" + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    updated = with_table(text)
    if args.check:
        if updated != text:
            print(f"{args.readme}: the settings table is stale; run {REGENERATE}")
            return 1
        return 0
    if updated != text:
        args.readme.write_text(updated, encoding="utf-8")
        print(f"updated the settings table in {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
