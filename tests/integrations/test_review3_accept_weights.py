"""Whether a refused request gets the JSON 401 or the browser's 303 follows the
``Accept`` header's weights (RFC 9110 12.4.2, 12.5.1): a JSON type ranked above
``text/html`` gets JSON, one weighted 0 is refused, and ``q``/``Q`` are one name
(RFC 5234 2.3). The test was a substring check, so ``text/html;q=0, application/json``
(HTML refused outright) got an empty 303. The guard's 503 carries ``no-store`` like
every other refusal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.integrations.http import Client, RequestInfo, client_kind, decision_response
from stepup.reauth import ReauthUnavailable


def _kind(accept: str) -> Client:
    return client_kind(RequestInfo("GET", "/api-key", accept=accept))


@pytest.mark.parametrize(
    ("accept", "kind"),
    [
        ("application/json", Client.JSON),
        ("application/problem+json", Client.JSON),
        ("text/html;q=0, application/json", Client.JSON),
        ("application/json, text/html;q=0.1", Client.JSON),
        ("application/json;Q=0.9, text/html;q=0.5", Client.JSON),
        ("text/html;level=1;q=0.2, application/json;q=0.3", Client.JSON),
        ("application/json;q=0, text/html", Client.BROWSER),
        ("application/json;q=0", Client.BROWSER),
        ("application/json, text/html", Client.BROWSER),  # a tie: the page
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", Client.BROWSER),
        ("*/*", Client.BROWSER),
        ("", Client.BROWSER),
        ("application/json;q=2, text/html;q=0.5", Client.BROWSER),  # not a weight
        ("application/json;q=0.0001", Client.BROWSER),  # four decimals: not a weight
    ],
)
def test_the_answer_follows_the_weights(accept: str, kind: Client) -> None:
    assert _kind(accept) is kind


_WEIGHT = st.sampled_from(["0", "0.1", "0.25", "0.5", "0.999", "1", "1.000"])


@given(json_weight=_WEIGHT, html_weight=_WEIGHT, json_first=st.booleans())
def test_json_wins_exactly_when_it_weighs_more(
    json_weight: str, html_weight: str, json_first: bool
) -> None:
    ranges = [f"application/json;q={json_weight}", f"text/html;q={html_weight}"]
    accept = ", ".join(ranges if json_first else ranges[::-1])
    expected = Client.JSON if float(json_weight) > float(html_weight) else Client.BROWSER
    assert _kind(accept) is expected


def test_the_guards_outage_answer_is_never_stored() -> None:
    request = RequestInfo("GET", "/api-key", accept="application/json")
    answer = decision_response(ReauthUnavailable("api_key.read"), request, reauth_url="/r")
    assert answer is not None
    assert answer.status == 503
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["Retry-After"] == "5"


def test_a_locale_hook_that_raises_leaves_the_title_to_accept_language(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A hook written for pages (reading something only a page request sets) raised on
    an API client's refusal and turned its 401 and challenge into a 500: a JSON title is
    not worth that. The title follows Accept-Language; the hook's failure is logged."""

    def hook() -> str:
        raise LookupError("g.profile_language")

    request = RequestInfo(
        "GET", "/api-key", accept="application/json", accept_language="de"
    ).in_locale(hook)
    with caplog.at_level("WARNING", logger="stepup.integrations.http"):
        assert request.locale == "de"
    assert "LookupError" in caplog.text
    assert "profile_language" not in caplog.text
