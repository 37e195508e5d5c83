"""A form POST interrupted by a re-authentication at a real OpenID provider resumes after
the provider's answer (the token waits in the session during the trip)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from idp.oidc.harness import ALICE, REDIRECT_URI, Provider, launch_provider
from idp.oidc.useragent import UserAgent
from integrations.flask.flask_support import TestApp, set_flag
from integrations.flask.oidc_support import oidc_app_on
from integrations.flask.test_sso_oidc import _oidc_user, _to_provider
from integrations.resume_support import resume_form, try_again_link

pytestmark = pytest.mark.oidc


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    started = launch_provider(tmp_path_factory.mktemp("flask-oidc-resume") / "provider.log")
    yield started
    started.stop()


@pytest.fixture
def oidc_app(provider: Provider) -> Iterator[TestApp]:
    with oidc_app_on(provider) as app:
        yield app


def test_a_form_post_resumes_after_the_provider_answers(
    oidc_app: TestApp, provider: Provider
) -> None:
    admin = oidc_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    alice = _oidc_user(oidc_app, provider, "alice", ALICE[0])

    refused = alice.client.post(
        "/api-key/regenerate", data={"label": "deploy"}, headers={"Referer": "/api-key"}
    )
    assert refused.status_code == 303
    assert "resume=" in refused.headers["Location"]
    to_provider = _to_provider(alice, refused.headers["Location"])
    assert to_provider.status_code == 303

    agent = UserAgent(REDIRECT_URI)
    try:
        callback = agent.authorize(
            to_provider.headers["Location"], login=ALICE[0], password=ALICE[1]
        )
    finally:
        agent.close()
    back = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")
    assert back.status_code == 200  # the resume page, not the 303 to /api-key
    target, fields = resume_form(back.get_data(as_text=True))
    assert target == "/api-key/regenerate"
    assert ("label", "deploy") in fields
    assert alice.client.post(target, data=dict(fields)).get_data(as_text=True) == "regenerated"


def test_two_trips_in_two_tabs_each_resume_their_own_form(
    oidc_app: TestApp, provider: Provider
) -> None:
    """Tab A suspends one form and leaves for the provider, then tab B suspends another
    and leaves too: the answer to A's trip sends A's form again, never B's (the token
    rides with the trip's own state, not in one session key the later trip overwrote).
    B's open trip belongs to the session id A's success renewed, so it is refused; B's
    re-auth page, pressed again, brings B's form back."""
    admin = oidc_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    alice = _oidc_user(oidc_app, provider, "alice", ALICE[0])

    def suspend(label: str) -> str:
        refused = alice.client.post(
            "/api-key/regenerate", data={"label": label}, headers={"Referer": "/api-key"}
        )
        assert "resume=" in refused.headers["Location"]
        return str(refused.headers["Location"])

    def finish(to_provider: str) -> Any:
        agent = UserAgent(REDIRECT_URI)
        try:
            callback = agent.authorize(to_provider, login=ALICE[0], password=ALICE[1])
        finally:
            agent.close()
        return alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")

    def resumed_label(back: Any) -> tuple[str, list[str]]:
        assert back.status_code == 200
        target, fields = resume_form(back.get_data(as_text=True))
        return target, [v for n, v in fields if n == "label"]

    page_a, page_b = suspend("tab-a"), suspend("tab-b")
    trip_a = _to_provider(alice, page_a).headers["Location"]
    trip_b = _to_provider(alice, page_b).headers["Location"]
    assert resumed_label(finish(trip_a)) == ("/api-key/regenerate", ["tab-a"])
    assert finish(trip_b).status_code == 400  # started under the id A's success renewed
    again = _to_provider(alice, page_b).headers["Location"]
    assert resumed_label(finish(again)) == ("/api-key/regenerate", ["tab-b"])


def test_a_cancelled_trip_keeps_the_form_for_the_next_try(
    oidc_app: TestApp, provider: Provider
) -> None:
    """The user cancels at the provider: the "Try again" link keeps the action and the
    suspended form, and the next trip sends it again."""
    admin = oidc_app.client()
    admin.login("alice")
    assert set_flag(admin).status_code == 200
    alice = _oidc_user(oidc_app, provider, "alice", ALICE[0])
    refused = alice.client.post(
        "/api-key/regenerate", data={"label": "deploy"}, headers={"Referer": "/api-key"}
    )
    first = _to_provider(alice, refused.headers["Location"]).headers["Location"]
    state = parse_qs(urlsplit(first).query)["state"][0]
    cancelled = alice.get(f"/stepup/reauth/oidc/callback?error=access_denied&state={state}")
    assert cancelled.status_code == 400
    again = try_again_link(cancelled.get_data(as_text=True))
    query = parse_qs(urlsplit(again).query)
    assert (query["action"], query["next"]) == (["api_key.regenerate"], ["/api-key"])
    assert query["resume"] == parse_qs(urlsplit(refused.headers["Location"]).query)["resume"]

    agent = UserAgent(REDIRECT_URI)
    try:
        callback = agent.authorize(
            _to_provider(alice, again).headers["Location"], login=ALICE[0], password=ALICE[1]
        )
    finally:
        agent.close()
    back = alice.get(f"/stepup/reauth/oidc/callback?{urlencode(callback)}")
    assert back.status_code == 200
    target, fields = resume_form(back.get_data(as_text=True))
    assert (target, ("label", "deploy") in fields) == ("/api-key/regenerate", True)
