"""What the SSO tests of a transaction-bound action share in the three frameworks: the
cases, run against each framework's app through a small driver (:class:`Trip`).

A trip to the provider confirms the one transaction the guard kept (deleting workspace
prod-eu), and only while the session still keeps it. Answered in time, it grants a
single-use proof for that transaction and nothing else. Answered once the transaction
has expired (the person was away at the provider), it is refused as the password form
refuses it (400, "expired or already used", no "Try again"): nothing is recorded, in
particular not the session's grant in its place, so every other sensitive action still
asks for a re-authentication.

The providers (tests/idp) stamp real times: the app's clock starts
:data:`CLOCK_BEHIND` seconds behind them, and the trip leaves just before the
transaction is :data:`~stepup.integrations.transaction.PENDING_TTL` old, so the
provider's login lands after the trip began and the answer comes back one second
before, or exactly at, the end of the transaction's wait.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.sso_refusal_support import assert_noted, refusals
from stepup.events import ReauthSucceeded
from stepup.integrations.transaction import PENDING_TTL
from stepup.testing import SettableClock

#: The words of the refusal (TEXT["transaction_expired"], the password form's too).
EXPIRED = "This confirmation has expired or was already used."
#: The page's link to the re-auth page after other refusals: none here.
TRY_AGAIN = "Try again"
#: How long the person reads the re-auth page before pressing the provider's button.
READING = PENDING_TTL - 20
#: How long the person is away at the provider: in time, or just too long.
IN_TIME, TOO_LONG = 19.0, 20.0
#: How far behind the real time the app's clock starts (see the module's docstring).
CLOCK_BEHIND = READING + 10


@dataclass(frozen=True)
class Reply:
    """The app's answer to the provider's (after the provider's login)."""

    status: int
    text: str


class Trip(Protocol):
    """One framework's app, with alice signed in through the provider (OIDC or SAML)
    and the tenant's step-up flag on."""

    @property
    def clock(self) -> SettableClock: ...

    @property
    def events(self) -> list[Any]:
        """The events the app emitted (the cases clear them)."""
        ...

    @property
    def method(self) -> str:
        """``oidc`` or ``saml``."""
        ...

    def ask(self, workspace: str = "prod-eu") -> str:
        """POST the form that deletes ``workspace`` (a transaction-bound action); the
        re-auth page the guard sends it to."""
        ...

    def leave(self, reauth_page: str) -> str:
        """Open the re-auth page, press the provider's button: where it sends her."""
        ...

    def come_back(self, to_provider: str) -> Reply:
        """She signs in at the provider; the app's answer to the provider's."""
        ...

    def destroy(self) -> int:
        """The status of deleting workspace prod-eu now (200: done)."""
        ...

    def unrelated(self) -> int:
        """The status of reading the API key now, a sensitive action of another rule
        (200: allowed)."""
        ...


def new_clock(real_now: float) -> SettableClock:
    """The app's clock, :data:`CLOCK_BEHIND` the providers' real time."""
    return SettableClock(real_now - CLOCK_BEHIND)


def _confirmations(trip: Trip) -> list[str | None]:
    """The transaction of each grant recorded since the events were cleared (``None``:
    the session's grant)."""
    return [e.transaction for e in trip.events if isinstance(e, ReauthSucceeded)]


def _asked(trip: Trip) -> tuple[str, str]:
    """The re-auth page for the deletion, and the digest of the transaction it confirms;
    the events of what came before (the admin's sign-in, the flag) are cleared."""
    reauth_page = trip.ask()
    (digest,) = parse_qs(urlsplit(reauth_page).query)["transaction"]
    trip.events.clear()
    return reauth_page, digest


def _assert_refused(trip: Trip, reply: Reply, caplog: pytest.LogCaptureFixture) -> None:
    assert reply.status == 400, reply.text
    assert EXPIRED in reply.text, reply.text
    assert TRY_AGAIN not in reply.text  # nothing to try again: the action itself is
    # Noted as a refusal, but no failed re-authentication: she did prove who she is.
    assert_noted(caplog, trip.method, "transaction_expired")
    assert refusals(trip.events) == []


def answered_in_time(trip: Trip, caplog: pytest.LogCaptureFixture) -> None:
    """Back one second before the transaction's wait ends: a single-use proof for it,
    no session grant."""
    caplog.set_level(logging.INFO, "stepup.integrations")
    reauth_page, digest = _asked(trip)
    trip.clock.advance(READING)
    to_provider = trip.leave(reauth_page)
    trip.clock.advance(IN_TIME)
    reply = trip.come_back(to_provider)
    assert reply.status in (200, 303), reply.text  # the form sent again, or the way back
    assert _confirmations(trip) == [digest]
    assert trip.unrelated() == 303  # no session grant: the API key still asks
    assert trip.destroy() == 200
    assert trip.destroy() == 303  # spent: once


def answered_too_late(trip: Trip, caplog: pytest.LogCaptureFixture) -> None:
    """Back when the transaction has waited its full time: refused, nothing recorded."""
    caplog.set_level(logging.INFO, "stepup.integrations")
    reauth_page, _ = _asked(trip)
    trip.clock.advance(READING)
    to_provider = trip.leave(reauth_page)
    trip.clock.advance(TOO_LONG)
    _assert_refused(trip, trip.come_back(to_provider), caplog)
    assert _confirmations(trip) == []
    assert trip.unrelated() == 303  # no session grant in the proof's place
    assert trip.destroy() == 303
