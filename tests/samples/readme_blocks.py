"""The README's code blocks, by language, and the commands in its shell blocks."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(readme_text()) if lang == language]


def shell_commands() -> list[list[str]]:
    """Each command line of the README's plain blocks, as argv (VAR=value prefixes dropped)."""
    commands = []
    for body in code_blocks(""):
        for line in body.splitlines():
            text = line.split("  #", 1)[0].strip()
            if not text or text.startswith(("choreoscope demo is running", "  ")):
                continue
            argv = shlex.split(text)
            while argv and _ASSIGNMENT.match(argv[0]):
                argv = argv[1:]
            if argv and argv[0] in {"choreoscope", "make", "python", "curl", "export"}:
                commands.append(argv)
    return commands


def commands_of(program: str) -> list[list[str]]:
    return [argv for argv in shell_commands() if argv[0] == program]
