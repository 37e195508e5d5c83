"""A store's report of a misconfiguration (``ConfigurationError``: Django's ORM store
called from a running event loop) reaches the decision code as itself, like a refusal of
malformed input: it is a mistake in the code, which retrying never mends, so it is
neither turned into ``StoreUnavailableError`` (a 503 "try again", forever) nor logged as
an outage. A ``StoreConfigurationError`` (a store that cannot be opened) stays an
outage to a decision, as before."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from stepup._flow import Flow, run, run_async
from stepup.errors import ConfigurationError, StoreConfigurationError, StoreUnavailableError


class _Store:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_grant(self, *args: Any) -> Any:
        raise self.error


class _AsyncStore(_Store):
    async def get_grant(self, *args: Any) -> Any:
        raise self.error


def _flow() -> Flow[str]:
    try:
        yield ("get_grant", ("u", "s"))
    except StoreUnavailableError:
        return "unavailable"
    return "answered"


def _answers(error: Exception) -> list[Any]:
    answers: list[Any] = []
    drives = (
        lambda: run(_flow(), _Store(error)),
        lambda: asyncio.run(run_async(_flow(), _Store(error))),
        lambda: asyncio.run(run_async(_flow(), _AsyncStore(error))),
    )
    for drive in drives:
        try:
            answers.append(drive())
        except ConfigurationError as exc:
            answers.append(exc)
    return answers


def test_a_misconfiguration_reaches_the_caller_as_itself(caplog: pytest.LogCaptureFixture) -> None:
    mistake = ConfigurationError("DjangoStore.get_grant was called from async code")
    with caplog.at_level(logging.DEBUG, logger="stepup"):
        answers = _answers(mistake)
    assert answers == [mistake, mistake, mistake]
    assert not any(isinstance(a, StoreUnavailableError) for a in answers)
    assert [r for r in caplog.records if r.name == "stepup.store"] == []


def test_a_store_that_cannot_be_opened_is_still_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = StoreConfigurationError("sqlite:///x", "open the SQLite database", "no such dir")
    with caplog.at_level(logging.DEBUG, logger="stepup"):
        assert _answers(outage) == ["unavailable", "unavailable", "unavailable"]
    assert len([r for r in caplog.records if r.name == "stepup.store"]) == 3
