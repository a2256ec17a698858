"""What every traced publish checks before it starts a span, so a call that cannot
publish what the caller meant is refused with what to write instead, and leaves no
publish span behind for the correlator to wait on.
"""

from __future__ import annotations

from typing import Any

from instrumentation.errors import ConfigurationError, PayloadTypeError


def check_payload(subject: str, payload: Any) -> None:
    """Refuse a payload NATS cannot carry as it is (a str, a dict, None): nats-py would
    fail with 'can't concat str to bytes' after the publish span started."""
    if not isinstance(payload, (bytes, bytearray)):
        raise PayloadTypeError(subject=subject, type_name=type(payload).__name__)


def check_publish_subject(subject: str) -> None:
    """Refuse a subject one cannot publish to: a wildcard, an empty token, whitespace.

    NATS takes ``*`` and ``>`` only in subscriptions; a publish to ``docs.*`` is stored
    and delivered as that literal subject, which is never what was meant.
    """
    if (
        not subject
        or " " in subject
        or not subject.isprintable()
        or subject[0] == "."
        or subject[-1] == "."
        or ".." in subject
    ):
        raise ConfigurationError(
            setting="subject",
            value=subject,
            fix="publish to a subject of non-empty dot-separated tokens without spaces, "
            "like 'docs.received'",
        )
    if ("*" in subject or ">" in subject) and any(t in ("*", ">") for t in subject.split(".")):
        raise ConfigurationError(
            setting="subject",
            value=subject,
            fix="publish to a concrete subject, like 'docs.received': the wildcards '*' and "
            "'>' only subscribe (Agent.on, subscribe)",
        )
