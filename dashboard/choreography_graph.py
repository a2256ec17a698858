"""The choreography map as Graphviz DOT: services (boxes) and subjects (ellipses).

Each edge row of the correlator's ``edges`` view gives two arrows, producer →
subject and subject → consumer; the second carries the hop's figures (messages,
p95, error and drop rates). Hops with drops or errors are drawn red and thick.

Every name is written as a quoted DOT string with quotes and backslashes escaped,
so a service or subject name can never become markup (Graphviz HTML labels need
``<...>`` delimiters, which a quoted string never is).
"""

from __future__ import annotations

import math

import pandas as pd

SERVICE_STYLE = 'shape=box, style="rounded,filled", fillcolor="#e8f0fb", color="#4a90d9"'
SUBJECT_STYLE = 'shape=ellipse, style=filled, fillcolor="#f5f5f5", color="#9e9e9e"'
HEALTHY_EDGE = 'color="#7f7f7f"'
ANOMALOUS_EDGE = 'color="#d62728", penwidth=2.5, fontcolor="#d62728"'


def dot_string(text: object) -> str:
    """``text`` as a quoted DOT string: nothing in it is markup or an escape."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r", " ").replace("\n", " ")
    return f'"{escaped}"'


def is_anomalous(edge: pd.Series) -> bool:
    return _rate(edge.get("drop_rate")) > 0 or _rate(edge.get("error_rate")) > 0


def edge_label(edge: pd.Series) -> str:
    count = int(edge["messages"])
    parts = [f"{count} msg{'' if count == 1 else 's'}"]
    if pd.notna(edge.get("p95_ms")):
        parts.append(f"p95 {_duration(float(edge['p95_ms']))}")
    if _rate(edge.get("error_rate")) > 0:
        parts.append(f"errors {_rate(edge['error_rate']):.1%}")
    if _rate(edge.get("drop_rate")) > 0:
        parts.append(f"dropped {_rate(edge['drop_rate']):.1%}")
    return " · ".join(parts)


def choreography_dot(edges: pd.DataFrame) -> str:
    """The DOT source of the map for ``edges`` rows."""
    lines = [
        "digraph choreography {",
        '  rankdir=TB; bgcolor="transparent"; nodesep=0.5; ranksep=0.35;',
        '  node [fontname="Helvetica", fontsize=12];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    services = set(edges["producer_service"].dropna()) | set(edges["consumer_service"].dropna())
    subjects = set(edges["subject"].dropna())
    for service in sorted(services):
        lines.append(
            f"  {dot_string('svc:' + service)} [label={dot_string(service)}, {SERVICE_STYLE}];"
        )
    for subject in sorted(subjects):
        lines.append(
            f"  {dot_string('sub:' + subject)} [label={dot_string(subject)}, {SUBJECT_STYLE}];"
        )
    published = set()
    for _, edge in edges.iterrows():
        subject = dot_string("sub:" + str(edge["subject"]))
        producer = edge["producer_service"]
        if pd.notna(producer) and (producer, edge["subject"]) not in published:
            published.add((producer, edge["subject"]))
            lines.append(f"  {dot_string('svc:' + producer)} -> {subject} [{HEALTHY_EDGE}];")
        if pd.notna(edge["consumer_service"]):
            style = ANOMALOUS_EDGE if is_anomalous(edge) else HEALTHY_EDGE
            consumer = dot_string("svc:" + str(edge["consumer_service"]))
            lines.append(
                f"  {subject} -> {consumer} [label={dot_string(edge_label(edge))}, {style}];"
            )
    lines.append("}")
    return "\n".join(lines)


def _rate(value: object) -> float:
    if value is None:
        return 0.0
    rate = float(value)  # type: ignore[arg-type]
    return 0.0 if math.isnan(rate) else rate


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
