"""Refuse an option a command does not take as that command, with a near match.

argparse reports a subcommand's unknown option from the top-level parser: the user
reads `usage: choreoscope [-h] COMMAND ...`, which lists none of the command's
options, and no hint at the one they meant. This reports it from the command's own
parser (its usage line) and names the closest option it does take.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Sequence

__all__ = ["refuse_unknown_options"]


def refuse_unknown_options(
    *, parser: argparse.ArgumentParser, args: argparse.Namespace, extras: Sequence[str]
) -> None:
    """Exit with status 2 as argparse does, from the subcommand's parser, if
    ``extras`` (what ``parse_known_args`` left over) is not empty."""
    if not extras:
        return
    command = _command_parser(parser, getattr(args, "command", None)) or parser
    message = f"unrecognized arguments: {' '.join(extras)}"
    hints = [hint for hint in (_near_match(command, word) for word in extras) if hint]
    if hints:
        message += f" ({'; '.join(hints)})"
    command.error(message)


def _command_parser(
    parser: argparse.ArgumentParser, command: str | None
) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return None


def _near_match(parser: argparse.ArgumentParser, word: str) -> str | None:
    if not word.startswith("--"):
        return None
    name = word.split("=", 1)[0]
    known = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"did you mean {close[0]}?" if close else None
