"""The one error hierarchy of choreoscope.

It lives here, on the ground floor, because every package may raise it and
instrumentation imports nothing of ours. Importing this module pulls in no
OpenTelemetry, NATS or DuckDB.

Each subclass builds a message that tells the user what to do. ``transient``
says whether retrying the same call later can succeed.
"""

from __future__ import annotations


def reach_nats_advice(*, option: str) -> str:
    """What to check when NATS cannot be reached, ``option`` naming where the URL came
    from (``"the Agent's nats_url="``): shared by the error a first connect raises and
    the warning of a connection that keeps trying."""
    return (
        "check that a nats-server is running there (`choreoscope nats` or `make demo` starts "
        f"one on nats://127.0.0.1:4222) and that {option} names it (on choreoscope's "
        "command line: --nats, or the CHOREOSCOPE_NATS environment variable)"
    )


class ChoreoscopeError(Exception):
    """Base of every error choreoscope raises on purpose."""

    transient: bool = False


class ConfigurationError(ChoreoscopeError, ValueError):
    """A setting, flag or argument has a value that cannot work."""

    def __init__(self, *, setting: str, value: object, fix: str) -> None:
        self.setting = setting
        self.value = value
        self.fix = fix
        super().__init__(f"{setting}={value!r} cannot be used: {fix}")


class BusUnavailableError(ChoreoscopeError):
    """NATS (or JetStream) did not answer; retrying later can succeed."""

    transient = True

    def __init__(self, *, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(
            f"NATS at {url} is unavailable ({reason}): check that nats-server runs with "
            "JetStream enabled (-js) and that the URL and credentials are right"
        )


class NatsUnreachableError(BusUnavailableError):
    """A first connect found no NATS server answering at ``url``; retrying later can
    succeed. ``option`` names where the URL came from, for the user to correct it."""

    def __init__(self, *, url: str, reason: str, option: str) -> None:
        self.url = url
        self.reason = reason
        self.option = option
        ChoreoscopeError.__init__(
            self,
            f"could not connect to NATS at {url} ({reason}): {reach_nats_advice(option=option)}",
        )


class PublishError(ChoreoscopeError):
    """JetStream did not store an event; retrying later can succeed."""

    transient = True

    def __init__(self, *, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(
            f"could not publish to {subject!r} ({reason}): check that NATS is reachable and "
            "that a JetStream stream captures this subject (the Agent's stream= and "
            "stream_subjects= options choose it)"
        )


class NoStreamCapturesError(PublishError):
    """No JetStream stream captures a subject the Agent publishes to, and a core NATS
    subscriber on it hid that: retrying cannot help until a stream captures it."""

    transient = False

    def __init__(self, *, subject: str) -> None:
        self.subject = subject
        self.reason = "no JetStream stream captures it"
        ChoreoscopeError.__init__(
            self,
            f"could not publish to {subject!r}: no JetStream stream captures it, and a core "
            "NATS subscriber on it (`nats sub '>'` while debugging, say) received the "
            "publish, which is not a stream: it stores nothing and sends no ack. The Agent "
            "could not add the subject to its stream (stream=) because its stream_subjects= "
            "do not cover it: add a subject that matches it to stream_subjects= (or capture "
            "it in a stream of your own)",
        )


class PayloadTooLargeError(PublishError):
    """An event is larger than the server's ``max_payload``; retrying cannot help."""

    transient = False

    def __init__(self, *, subject: str, size: int, limit: int) -> None:
        self.subject = subject
        self.size = size
        self.limit = limit
        self.reason = f"{size} bytes, over max_payload {limit}"
        ChoreoscopeError.__init__(
            self,
            f"could not publish to {subject!r}: the event is {size} bytes, more than the "
            f"{limit} bytes this NATS server accepts (max_payload); publish a reference to the "
            "data (an object-store key, a URL) instead, or raise max_payload in nats-server's "
            "configuration",
        )


class PayloadTypeError(ChoreoscopeError, TypeError):
    """A payload given to ``TracedNats`` is not bytes; NATS carries bytes only."""

    def __init__(self, *, subject: str, type_name: str) -> None:
        self.subject = subject
        self.type_name = type_name
        super().__init__(
            f"could not publish to {subject!r}: the payload is {type_name}, not bytes; encode "
            "it first (text.encode(), json.dumps(obj).encode()), or use an Agent, whose "
            "publish and emit encode str and JSON values for you"
        )


class EventDataError(ChoreoscopeError, TypeError):
    """Data given to an Agent to publish is not bytes, str or JSON values."""

    def __init__(self, *, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(
            f"could not publish to {subject!r}: its data is not JSON ({reason}); give JSON "
            "values (dict, list, str, int, float, bool, None: a datetime as "
            ".isoformat(), say), or bytes or str you encoded yourself"
        )


class BadMessageError(ChoreoscopeError):
    """A delivered message cannot be handled as it is; redelivering it cannot help.

    The Agent dead-letters such a message at once instead of retrying it.
    """

    def __init__(self, *, subject: str, reason: str) -> None:
        self.subject = subject
        self.reason = reason
        super().__init__(
            f"message on {subject!r} cannot be handled: {reason}; it was dead-lettered to "
            f"dlq.{subject} with its original headers, fix the producer and republish it"
        )
