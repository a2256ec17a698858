"""What ``Agent.on`` checks before it accepts a handler, so a mistake is refused when
the service starts, with what to write instead, not found at the first event.

A handler that is not ``async def``, or that cannot be called with one argument (the
``Event``), would otherwise fail on every delivery: it would be retried
``max_deliveries`` times (a plain function running its side effects each time) and
every event dead-lettered. A queue group becomes part of the JetStream consumer's
name, where dots, wildcards and spaces cannot go.
"""

from __future__ import annotations

import inspect
from typing import Any

from instrumentation.agent_delivery import Decode, Handler, HandlerFunction
from instrumentation.agent_settings import NOT_IN_NAMES
from instrumentation.errors import ConfigurationError

_EXAMPLE = "async def handle(event): ..."


def check_decode(decode: str) -> None:
    if decode not in ("json", "text", "bytes"):
        raise ConfigurationError(setting="decode", value=decode, fix="use json, text or bytes")


def new_handler(*, subject: str, queue: str, fn: HandlerFunction, decode: Decode) -> Handler:
    """The handler ``Agent.on(subject, queue=...)`` registers, once its parts are checked."""
    if not subject or any(c in subject for c in " \t\r\n"):
        raise ConfigurationError(
            setting="subject", value=subject, fix="use a NATS subject without spaces"
        )
    if not queue or any(c in queue for c in NOT_IN_NAMES):
        raise ConfigurationError(
            setting="queue",
            value=queue,
            fix="use a queue group name without spaces, dots, '*' or '>' (it names the "
            "JetStream consumer); '-' and '_' are fine, as in 'doc-extractor'",
        )
    _check_function(fn, subject=subject)
    return Handler(subject, queue, fn, decode)


def _check_function(fn: Any, *, subject: str) -> None:
    name = getattr(fn, "__qualname__", None) or repr(fn)
    setting = f"handler for {subject!r}"
    if not callable(fn):
        raise ConfigurationError(setting=setting, value=fn, fix=f"pass a function: {_EXAMPLE}")
    if inspect.isasyncgenfunction(fn):
        raise ConfigurationError(
            setting=setting,
            value=name,
            fix=f"it is an async generator (it yields); return instead: {_EXAMPLE}",
        )
    if not _is_async(fn):
        raise ConfigurationError(
            setting=setting,
            value=name,
            fix=f"a handler must be a coroutine function, `{_EXAMPLE}`; to call blocking "
            "code from it, use `await asyncio.to_thread(work, event.data)`",
        )
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        raise ConfigurationError(
            setting=setting,
            value=name,
            fix=f"a handler takes one argument, the Event ({_EXAMPLE}); read event.data, "
            "event.subject, event.workflow_id from it",
        ) from None
    except ValueError:
        pass  # no signature to read (a builtin): called as it is


def _is_async(fn: Any) -> bool:
    """A coroutine function, or a decorator's wrapper of one, or an object whose
    ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(inspect.unwrap(fn)):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - its method, not callable()
    return not inspect.isroutine(fn) and inspect.iscoroutinefunction(call)
