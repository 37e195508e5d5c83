"""What a decision flow is told of a failed store call, and what the operator reads: a
store's refusal of malformed input stays the typed error it is; anything else is
unavailable (fail closed), logged once on ``stepup.store`` without a traceback."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from stepup._flow import Flow, run, run_async
from stepup.errors import MalformedInputError, StoreUnavailableError


class _Store:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_grant(self, *args: Any) -> Any:
        raise self.error


def _flow() -> Flow[str]:
    try:
        yield ("get_grant", ("u", "s"))
    except StoreUnavailableError:
        return "unavailable"
    return "answered"


def _both(store: Any) -> list[Any]:
    answers: list[Any] = []
    for drive in (lambda: run(_flow(), store), lambda: asyncio.run(run_async(_flow(), store))):
        try:
            answers.append(drive())
        except MalformedInputError as exc:
            answers.append(exc)
    return answers


def test_a_driver_error_is_unavailable_and_logged_once_without_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_url = "postgresql://admin:hunter2@db/x"
    with caplog.at_level(logging.DEBUG, logger="stepup"):
        assert _both(_Store(OSError(secret_url))) == ["unavailable", "unavailable"]
    records = [r for r in caplog.records if r.name == "stepup.store"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert all("_Store.get_grant failed (OSError)" in r.getMessage() for r in records)
    assert all(r.exc_info is None for r in records)
    assert "hunter2" not in caplog.text


def test_a_stores_refusal_of_malformed_input_stays_typed(caplog: pytest.LogCaptureFixture) -> None:
    refusal = MalformedInputError("grant.session_id must be text")
    with caplog.at_level(logging.DEBUG, logger="stepup"):
        answers = _both(_Store(refusal))
    assert answers == [refusal, refusal]
    assert not [r for r in caplog.records if r.name == "stepup.store"]
