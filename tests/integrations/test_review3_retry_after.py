"""A page answered 429 says when to try again in ``Retry-After`` too (RFC 9110 10.2.3,
as an HTTP-date: no clock needed to write it), from the pause its page shows; a 429
page without a time, and every other status but 503, carries none."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

import pytest

from integrations.flask.flask_support import make_app, set_flag
from stepup.integrations.pages import PAGE_HEADERS, page_headers
from stepup.integrations.views import throttled_message


class _Paused:
    def __init__(self, retry_at: float | None) -> None:
        self.error = throttled_message(retry_at)


def test_a_paused_page_says_until_when_as_an_http_date() -> None:
    headers = page_headers(429, _Paused(1_800_000_000.4))
    moment = parsedate_to_datetime(headers["Retry-After"])
    assert moment.timestamp() == 1_800_000_001  # rounded up: never earlier than the pause
    assert {k: v for k, v in headers.items() if k != "Retry-After"} == PAGE_HEADERS


@pytest.mark.parametrize(
    ("status", "page"),
    [(429, _Paused(None)), (429, None), (400, _Paused(1_800_000_000.0)), (200, None)],
)
def test_no_time_no_header(status: int, page: object) -> None:
    assert "Retry-After" not in page_headers(status, page)


def test_a_throttled_password_reauth_carries_retry_after() -> None:
    test_app = make_app()
    admin = test_app.client()
    admin.login("alice")
    set_flag(admin, True)
    bob = test_app.client()
    bob.login("bob")
    location = bob.get("/api-key").headers["Location"]
    answers = [bob.reauth(location, f"wrong-{n}") for n in range(6)]
    statuses = [a.status_code for a in answers]
    assert statuses[0] == 400
    assert statuses[-1] == 429
    paused = answers[-1]
    moment = parsedate_to_datetime(paused.headers["Retry-After"])
    assert moment.timestamp() > test_app.clock()
    assert all("Retry-After" not in a.headers for a in answers if a.status_code == 400)
