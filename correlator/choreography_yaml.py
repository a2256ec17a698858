"""choreography.yaml as YAML text: a loader that refuses a key written twice, and
where in the text a key or a syntax error is, for messages that name the line."""

from __future__ import annotations

from typing import Any

import yaml


class DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first_line: int, line: int) -> None:
        self.key, self.first_line, self.line = key, first_line, line


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word: a step copied to start
    another and not renamed silently replaced the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:  # before `<<:` merges, whose keys may be overridden
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in seen:
                raise DuplicateKey(key_node.value, seen[key_node.value], line)
            seen[key_node.value] = line
        return super().construct_mapping(node, deep=deep)


def line_of(text: str, where: str) -> int | None:
    """The line of the key ``where`` names (``workflows.w.steps.recruit.cv.parsed.sla``),
    or of the nearest key above it that the text has; None when there is none."""
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.SequenceNode):
            for item in node.value:  # a consumer's own terms: consumers.<name>
                walk(item, prefix)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    here = f"{prefix}.{key.value}" if prefix else str(key.value)
                    lines.setdefault(here, key.start_mark.line + 1)
                    walk(value, here)

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    if root is None:
        return None
    walk(root, "")
    while where:
        if where in lines:
            return lines[where]
        where = where.rpartition(".")[0]
    return None


def yaml_problem(e: yaml.YAMLError) -> str:
    """Where the YAML is broken and how, on one line: PyYAML's own message spans
    four, and names the text "<unicode string>" rather than the file."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None)
    if mark is None or not problem:
        return f" ({' '.join(str(e).split())})"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}{_hint(problem)}"


# PyYAML's words for the mistakes people make by hand, and what they mean
_HINTS = (
    ("'\\t'", "a tab: YAML indents with spaces only"),
    ("expected <block end>", "this line is indented unlike the lines around it"),
    (
        "could not find expected ':'",
        "a line above it lacks its ':', or is indented unlike its peers",
    ),
    (
        "mapping values are not allowed here",
        "a ':' where a value was expected: quote the value, or indent the line",
    ),
    ("expected ',' or ']'", "a [list] opened before is not closed with ']'"),
    ("expected ',' or '}'", "a {mapping} opened before is not closed with '}'"),
)


def _hint(problem: str) -> str:
    for words, meaning in _HINTS:
        if words in problem:
            return f" ({meaning})"
    return ""
