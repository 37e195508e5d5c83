"""Run one piece of decision code against a sync or an async store.

Decision code is a generator that yields ``(method_name, args)`` store calls and
receives their results. :func:`run` and :func:`run_async` are the only places that
touch a store, so sync and async callers share every decision, and any store
failure reaches the decision code as :class:`StoreUnavailableError` (fail closed), but a
store's refusal of malformed input and its report of a misconfiguration, which reach it
as the :class:`~stepup.errors.MalformedInputError` or
:class:`~stepup.errors.ConfigurationError` they are. Each outage is logged once, at
WARNING on ``stepup.store``, naming the call and the error type. A call that ends in
anything else (an async caller's cancellation, a timeout, ``KeyboardInterrupt``)
reaches the decision code as itself, so a flow that must put something right (a
renewed session's old id keeps no grant) can still make its store calls; it raises
the same exception again when done, and nothing is logged.

A store may also offer ``batch(calls)``: several independent reads, given as
``(method_name, args)`` pairs, answered together as a tuple in one round trip. It is
an ordinary store call here (``("batch", (calls,))``); decision code asks for it only
when the store has it (see :class:`stepup.reauth.Reauth`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Generator
from typing import Any, TypeAlias, TypeVar

from .errors import ConfigurationError, MalformedInputError, StoreUnavailableError

__all__ = ["Flow", "StoreCall", "run", "run_async"]

R = TypeVar("R")
StoreCall: TypeAlias = tuple[str, tuple[Any, ...]]
Flow: TypeAlias = Generator[StoreCall, Any, R]
#: One line per failed store call, for the operator: the decision it led to (503, a
#: "try again") is the caller's, and carries no cause.
logger = logging.getLogger("stepup.store")


def _unavailable(store: object, method: str, exc: Exception) -> Exception:
    """What the flow is told of a failed store call: the store's refusal of malformed
    input, and its report of a misconfiguration (the sync store called from a running
    event loop), as they are (the caller's mistake, typed: retrying never helps),
    anything else as unavailable."""
    if isinstance(exc, StoreUnavailableError):
        error = exc  # a StoreConfigurationError too: an outage to the decision
    elif isinstance(exc, MalformedInputError | ConfigurationError):
        return exc
    else:
        # The message names the call and the error type only: driver messages can carry
        # URLs.
        error = StoreUnavailableError(
            f"{type(store).__name__}.{method} failed ({type(exc).__name__})"
        )
        error.__cause__ = exc
    logger.warning("store unavailable: %s", error)  # no traceback: an outage, not a bug
    return error


def run(flow: Flow[R], store: Any) -> R:
    """Drive ``flow`` with a synchronous store."""
    send = flow.send
    error: BaseException
    try:
        method, args = next(flow)
        while True:
            try:
                value = getattr(store, method)(*args)
            except Exception as exc:
                error = _unavailable(store, method, exc)
            except BaseException as exc:  # cancelled: the flow may clean up, then re-raise
                error = exc
            else:
                method, args = send(value)
                continue
            method, args = flow.throw(error)  # outside the except: no implicit chaining
    except StopIteration as stop:
        result: R = stop.value
        return result


async def run_async(flow: Flow[R], store: Any) -> R:
    """Drive ``flow`` with an async store (a sync store works too)."""
    send = flow.send
    error: BaseException
    try:
        method, args = next(flow)
        while True:
            try:
                value = getattr(store, method)(*args)
                if inspect.isawaitable(value):
                    value = await value
            except Exception as exc:
                error = _unavailable(store, method, exc)
            except BaseException as exc:  # cancelled: the flow may clean up, then re-raise
                error = exc
            else:
                method, args = send(value)
                continue
            method, args = flow.throw(error)  # outside the except: no implicit chaining
    except StopIteration as stop:
        result: R = stop.value
        return result
