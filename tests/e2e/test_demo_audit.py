"""The demo's audit log: events from the two-factor path name their user, a member sees
their own events, a tenant admin everyone's in the tenant, fifty to a page."""

from __future__ import annotations

import html
import re
from typing import Any

from e2e.journeys import ADMIN, MEMBER, PASSWORDS
from e2e.test_demo_app import csrf, sign_in
from stepup import TOTP
from stepup.demo.views_admin import AUDIT_PAGE
from stepup.testing import SettableClock

_ROW = re.compile(
    r'<tr class="source-(\w+)"><td[^>]*>[^<]*</td><td[^>]*>\w+</td><td class="event-name">(\w+)</td>'
    r"<td[^>]*>([^<]*)</td>"
)


def rows(page: str) -> list[tuple[str, str]]:
    """(event, user) of each row of an audit page."""
    return [(event, html.unescape(user)) for _, event, user in _ROW.findall(page)]


def sign_out(client: Any) -> None:
    page = client.get("/account")
    assert client.post("/logout", data={"csrf_token": csrf(page.text)}).status_code == 303


def enrol(client: Any, clock: SettableClock) -> TOTP:
    page = client.post(
        "/stepup/2fa/enrol", data={"csrf_token": csrf(client.get("/stepup/2fa").text)}
    )
    key = re.search(r'id="stepup-manual-key">([^<]+)<', page.text)
    assert key is not None, page.text
    totp = TOTP(key.group(1).replace(" ", ""))
    done = client.post(
        "/stepup/2fa/confirm", data={"csrf_token": csrf(page.text), "code": totp.at(clock())}
    )
    assert done.status_code in (200, 303)
    clock.advance(30)
    return totp


def test_two_factor_events_name_the_user_and_members_see_only_their_own(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, clock = app_client
    sign_in(client, MEMBER)
    totp = enrol(client, clock)
    sign_out(client)

    # Signing in: a wrong code, then the right one, on stepup's second step.
    assert sign_in(client, MEMBER).headers["location"].endswith("/stepup/2fa/verify")
    page = client.get("/stepup/2fa/verify")
    wrong = "000000" if totp.at(clock()) != "000000" else "111111"
    client.post("/stepup/2fa/verify", data={"csrf_token": csrf(page.text), "code": wrong})
    page = client.get("/stepup/2fa/verify")
    right = client.post(
        "/stepup/2fa/verify", data={"csrf_token": csrf(page.text), "code": totp.at(clock())}
    )
    assert right.headers["location"] == "/account"

    mine = rows(client.get("/audit").text)
    events = {event for event, _ in mine}
    assert {"TwoFactorEnabled", "TwoFactorRejected", "TwoFactorVerified", "SignedIn"} <= events
    assert {user for _, user in mine} == {"member"}  # no empty User cell, nobody else's
    sign_out(client)

    sign_in(client, ADMIN)
    everyone = rows(client.get("/audit").text)
    assert ("TwoFactorRejected", "member") in everyone
    assert ("SignedIn", "admin") in everyone
    assert all(user for _, user in everyone)
    assert PASSWORDS[MEMBER] not in client.get("/audit").text


def test_the_audit_log_pages(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    audit = client.app.state.demo.audit
    for number in range(AUDIT_PAGE + 10):
        audit.app_event("PagingProbe", "admin", number=number)

    first = client.get("/audit").text
    assert len(rows(first)) == AUDIT_PAGE
    assert 'id="audit-older"' in first
    assert 'id="audit-newer"' not in first
    assert f"number={AUDIT_PAGE + 9}<" in first  # newest first

    second = client.get("/audit?page=2").text
    assert 'id="audit-newer"' in second
    assert 'id="audit-older"' not in second
    assert "number=0<" in second
    assert 0 < len(rows(second)) <= AUDIT_PAGE
    # Nothing is shown twice across pages, and a silly page number is page 1.
    numbers = re.compile(r"number=\d+<")
    assert not set(numbers.findall(first)) & set(numbers.findall(second))
    assert rows(client.get("/audit?page=-3").text) == rows(first)
