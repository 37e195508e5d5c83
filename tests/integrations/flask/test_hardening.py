"""Issue 12 in Flask: the tenant PATCH is itself sensitive (item 2), bodies that are not
JSON:API are a 400 read with a streamed limit after the caller's authority is settled
(item 5), only ``True`` from a yes/no hook grants anything (item 6), factor changes
revoke grants and re-authentication renews the session id (item 9)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.flask.flask_support import (
    TENANT,
    Browser,
    TestApp,
    flag_body,
    fresh_grant,
    make_app,
    set_flag,
)
from integrations.tenant_answers import only_error
from integrations.tenant_probes import (
    BAD_ACCEPTS,
    BAD_BODIES,
    BAD_MEDIA_TYPES,
    BAD_QUERIES,
    check_400,
    check_406,
    check_415,
    check_query_400,
)
from stepup.adapters.storage.memory import MemoryStore
from stepup.tenants import MAX_BODY

URL = f"/stepup/tenants/{TENANT}"
TENANT_PAGE = "/settings/tenant"
JSONAPI = "application/vnd.api+json"


def _flag(test_app: TestApp) -> bool:
    with test_app.app.app_context():
        tenant = test_app.stepup.store.get_tenant(TENANT)
    return tenant is not None and tenant.flag("sensitive_actions_reauth")


def _patch(browser: Browser, on: bool, **headers: str) -> Any:
    return browser.patch(URL, data=json.dumps(flag_body(on)), content_type=JSONAPI, headers=headers)


def _sid(browser: Browser) -> str:
    with browser.client.session_transaction() as session:
        sid = session.get("_stepup_sid")
    assert isinstance(sid, str)
    return sid


# item 2: changing tenant settings is sensitive whatever the flag says ------------------


@pytest.mark.parametrize("flag_on", [False, True])
def test_patch_without_a_fresh_grant_is_401_with_the_reauth_details(
    test_app: TestApp, alice: Browser, flag_on: bool
) -> None:
    if flag_on:
        assert set_flag(alice, True).status_code == 200
    response = _patch(alice, not flag_on, Referer=f"http://localhost{TENANT_PAGE}")
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == JSONAPI
    error = only_error(response.json)
    assert (error["status"], error["code"]) == ("401", "reauth_required")
    answer = error["meta"]
    assert error["links"] == {"about": answer["reauth_url"]}
    assert answer["action"] == "tenant.settings.update"
    assert answer["methods"] == ["pwd"]
    assert answer["max_age"] == 6 * 3600
    query = parse_qs(urlsplit(answer["reauth_url"]).query)
    assert query == {"next": [TENANT_PAGE], "action": ["tenant.settings.update"]}
    assert _flag(test_app) is flag_on  # nothing changed


def test_a_bearer_client_gets_the_rfc_9470_challenge() -> None:
    test_app = make_app("subject_loader", store=MemoryStore())
    response = test_app.client().patch(
        URL,
        data=json.dumps(flag_body(True)),
        content_type=JSONAPI,
        headers={"Authorization": "Bearer token-alice"},
    )
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="insufficient_user_authentication"' in challenge
    assert 'max_age="21600"' in challenge
    assert response.headers["Content-Type"] == JSONAPI
    assert only_error(response.json)["meta"]["action"] == "tenant.settings.update"
    assert _flag(test_app) is False


def test_the_tenant_page_flow_comes_back_after_reauth_and_then_patches(
    test_app: TestApp, alice: Browser
) -> None:
    refused = _patch(alice, True, Referer=f"http://localhost{TENANT_PAGE}")
    back = alice.reauth(only_error(refused.json)["meta"]["reauth_url"], "correct horse")
    assert back.status_code == 303
    assert back.headers["Location"] == TENANT_PAGE
    assert _patch(alice, True).status_code == 200
    assert _flag(test_app) is True
    # The grant counts for switching it off again too: the same rule, flag on or off.
    assert _patch(alice, False).status_code == 200
    assert _flag(test_app) is False


def test_a_non_admin_is_403_before_any_reauth(test_app: TestApp, bob: Browser) -> None:
    response = _patch(bob, True)
    assert response.status_code == 403
    assert response.headers["Content-Type"] == JSONAPI


def test_an_app_policy_without_the_action_still_guards_the_endpoint() -> None:
    from integrations.flask.flask_support import app_policy
    from stepup.policy import Policy

    full = app_policy()
    names = [row["action"] for row in full.table() if row["action"] != "tenant.settings.update"]
    own = Policy({name: full.rule_for(name) for name in names})
    assert "tenant.settings.update" not in own
    test_app = make_app(store=MemoryStore(), policy=own)
    alice = test_app.client()
    alice.login("alice")
    assert _patch(alice, True).status_code == 401


# item 5: bodies -------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"[" * 100_000, b"{" * 100_000, b'{"data":' * 40_000, b"\xff\xfe"]
)
def test_a_body_that_is_not_json_is_a_jsonapi_400_and_changes_nothing(
    test_app: TestApp, alice: Browser, body: bytes
) -> None:
    fresh_grant(alice)
    response = alice.patch(URL, data=body, content_type=JSONAPI)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == JSONAPI
    assert response.json["errors"][0]["status"] == "400"
    assert _flag(test_app) is False


class _Counting:
    """A WSGI input that counts the bytes taken from it (20 MB on offer)."""

    def __init__(self, size: int = 20 * 1024 * 1024) -> None:
        self.left, self.taken = size, 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.taken += n
        return b" " * n

    def readline(self, n: int = -1) -> bytes:
        return self.read(n)


def _stream_patch(browser: Browser, stream: _Counting, **headers: str) -> Any:
    """A body of unknown length (as chunked transfer), read from ``stream``."""
    return browser.client.patch(
        URL,
        content_type=JSONAPI,
        headers=headers,
        environ_overrides={"wsgi.input": stream, "wsgi.input_terminated": True},
    )


def test_an_oversized_body_is_refused_without_reading_it_all(
    test_app: TestApp, alice: Browser
) -> None:
    fresh_grant(alice)
    stream = _Counting()
    response = _stream_patch(alice, stream)
    assert response.status_code == 400
    assert response.json["errors"][0]["code"] == "too_large"
    assert stream.taken <= MAX_BODY + 8192


def test_a_declared_oversized_length_is_refused_before_reading(
    test_app: TestApp, alice: Browser
) -> None:
    fresh_grant(alice)
    stream = _Counting(MAX_BODY + 1)
    response = alice.client.patch(
        URL,
        content_type=JSONAPI,
        headers={"Content-Length": str(MAX_BODY + 1)},
        environ_overrides={"wsgi.input": stream, "CONTENT_LENGTH": str(MAX_BODY + 1)},
    )
    assert response.status_code == 400
    assert stream.taken == 0


@pytest.mark.parametrize("who", ["stale-admin", "bob"])
def test_authority_is_settled_before_the_body_is_read(test_app: TestApp, who: str) -> None:
    browser = test_app.client()
    browser.login("alice" if who == "stale-admin" else "bob")
    stream = _Counting()
    response = _stream_patch(browser, stream)
    assert response.status_code == (401 if who == "stale-admin" else 403)
    assert stream.taken == 0


# item 6: only True is yes ------------------------------------------------------------


@pytest.mark.parametrize("answer", ["false", "0", "True", 1, "yes", object(), None])
def test_an_admin_hook_that_does_not_answer_true_is_no(
    test_app: TestApp, alice: Browser, answer: object
) -> None:
    test_app.stepup.hooks.is_tenant_admin = lambda subject, tenant_id: answer  # type: ignore[assignment,return-value]
    fresh_grant(alice)
    assert _patch(alice, True).status_code == 403
    assert _flag(test_app) is False


@pytest.mark.parametrize("answer", ["false", "0", 1, "True"])
def test_a_full_access_hook_that_does_not_answer_true_is_no(
    test_app: TestApp, alice: Browser, bob: Browser, answer: object
) -> None:
    bob.enrol()
    test_app.stepup.hooks.has_full_access = lambda subject: answer  # type: ignore[assignment,return-value]
    fresh_grant(alice)
    response = alice.form("/stepup/users/bob/2fa/remove", {})
    assert response.status_code == 403
    with test_app.app.app_context():
        assert test_app.stepup.two_factor.is_enrolled("bob")


def test_a_full_access_hook_may_answer_for_the_user_acted_on(
    test_app: TestApp, alice: Browser, bob: Browser
) -> None:
    """A hook that takes ``(subject, user_id)`` answers for that user: an admin of one
    tenant is no admin of another tenant's users."""
    bob.enrol()
    asked: list[tuple[str, str]] = []

    def only_carol(subject: Any, user_id: str) -> bool:
        asked.append((subject.user_id, user_id))
        return user_id == "carol"

    test_app.stepup.hooks.has_full_access = only_carol
    fresh_grant(alice)
    assert alice.form("/stepup/users/bob/2fa/remove", {}).status_code == 403
    with test_app.app.app_context():
        assert test_app.stepup.two_factor.is_enrolled("bob")
    test_app.stepup.hooks.has_full_access = lambda subject, user_id: user_id == "bob"
    assert alice.form("/stepup/users/bob/2fa/remove", {}).status_code == 303
    with test_app.app.app_context():
        assert not test_app.stepup.two_factor.is_enrolled("bob")
    assert asked == [("alice", "bob")]


# item 9: factor changes and session renewal ----------------------------------------------


def _grant_in_two_sessions(test_app: TestApp) -> tuple[Browser, Browser]:
    first, second = test_app.client(), test_app.client()
    for browser in (first, second):
        assert browser.login("alice").status_code == 303
        fresh_grant(browser)
    assert set_flag(first, True).status_code == 200  # revokes; grant again
    for browser in (first, second):
        fresh_grant(browser)
        assert browser.get("/api-key").status_code == 200
    return first, second


def _stored_grant(browser: Browser) -> Any:
    with browser.client.session_transaction() as session:
        user_id = session.get("user_id") or session.get("_user_id")
        sid = session.get("_stepup_sid")
    with browser.test_app.app.app_context():
        return browser.test_app.stepup.store.get_grant(user_id, sid)


def _no_grant_anywhere(*browsers: Browser) -> None:
    for browser in browsers:
        # Gone from the store, not only outranked by a factor strongest-available now asks for.
        assert _stored_grant(browser) is None
        assert browser.get("/api-key").status_code == 303


def test_enrolling_revokes_the_users_grants_in_every_session(test_app: TestApp) -> None:
    first, second = _grant_in_two_sessions(test_app)
    first.enrol()
    _no_grant_anywhere(first, second)


def test_regenerating_recovery_codes_revokes_every_grant(test_app: TestApp) -> None:
    first, second = _grant_in_two_sessions(test_app)
    first.enrol()
    fresh_grant(first)
    fresh_grant(second)
    response = first.form("/stepup/2fa/recovery-codes", {})
    assert response.status_code == 200
    _no_grant_anywhere(first, second)


def test_removing_two_factor_revokes_every_grant(test_app: TestApp) -> None:
    first, second = _grant_in_two_sessions(test_app)
    first.enrol()
    fresh_grant(first)
    fresh_grant(second)
    assert first.form("/stepup/2fa/remove", {}).status_code == 303
    _no_grant_anywhere(first, second)


def test_an_admins_removal_revokes_the_users_grants(test_app: TestApp) -> None:
    bob = test_app.client()
    bob.login("bob")
    bob.enrol()
    fresh_grant(bob)
    assert set_flag(_admin(test_app), True).status_code == 200
    fresh_grant(bob)
    assert bob.get("/api-key").status_code == 200
    admin = _admin(test_app)
    fresh_grant(admin)
    assert admin.form("/stepup/users/bob/2fa/remove", {}).status_code == 303
    _no_grant_anywhere(bob)


def _admin(test_app: TestApp) -> Browser:
    admin = test_app.client()
    admin.login("alice")
    return admin


def test_reauth_renews_the_session_id_and_binds_the_grant_to_the_new_one(
    test_app: TestApp, alice: Browser
) -> None:
    assert set_flag(alice, True).status_code == 200
    refused = alice.get("/api-key")
    assert refused.status_code == 303
    old = _sid(alice)
    with alice.client.session_transaction() as session:
        old_cookie_session = dict(session)
    assert alice.reauth(refused.headers["Location"], "correct horse").status_code == 303
    new = _sid(alice)
    assert new != old
    assert alice.get("/api-key").status_code == 200
    with test_app.app.app_context():
        store = test_app.stepup.store
        assert store.get_grant("alice", old) is None
        assert store.get_grant("alice", new) is not None
    # A copy of the session from before the re-authentication has no grant.
    stale = test_app.client()
    with stale.client.session_transaction() as session:
        session.update(old_cookie_session)
    assert stale.get("/api-key").status_code == 303


def test_a_subject_loader_with_its_own_session_id_keeps_it() -> None:
    """An app that builds its Subject without stepup.session_id() keeps its own id: the
    grant is bound to it (stepup cannot renew an id it does not own)."""
    from flask import session

    from stepup.subject import Subject

    test_app = make_app("subject_loader", store=MemoryStore())

    def own_ids() -> Subject | None:
        user_id = session.get("user_id")
        return Subject(user_id, "the-apps-own-id") if user_id else None

    test_app.stepup.hooks.subject_loader = own_ids
    alice = test_app.client()
    alice.login("alice")
    with test_app.app.app_context():
        body = json.dumps(flag_body(True))
        test_app.stepup.tenant_settings.patch(
            TENANT, body, actor_id="alice", actor_is_tenant_admin=True
        )
    refused = alice.get("/api-key")
    assert refused.status_code == 303
    assert alice.reauth(refused.headers["Location"], "correct horse").status_code == 303
    assert alice.get("/api-key").status_code == 200
    with test_app.app.app_context():
        assert test_app.stepup.store.get_grant("alice", "the-apps-own-id") is not None


# item 5, probed: every body json.loads or the seed would not take, every media type ----


def _tenant(test_app: TestApp) -> Any:
    with test_app.app.app_context():
        return test_app.stepup.store.get_tenant(TENANT)


@pytest.mark.parametrize(
    ("body", "code"), [p[1:] for p in BAD_BODIES], ids=[p[0] for p in BAD_BODIES]
)
def test_every_bad_body_is_a_jsonapi_400_and_changes_nothing(
    test_app: TestApp, alice: Browser, body: bytes, code: str
) -> None:
    fresh_grant(alice)
    before = _tenant(test_app)
    response = alice.patch(URL, data=body, content_type=JSONAPI)
    check_400(response.status_code, response.headers["Content-Type"], response.get_data(), code)
    assert _tenant(test_app) == before


@pytest.mark.parametrize("media_type", BAD_MEDIA_TYPES)
def test_a_media_type_the_endpoint_does_not_read_is_a_415(
    test_app: TestApp, alice: Browser, media_type: str
) -> None:
    fresh_grant(alice)
    before = _tenant(test_app)
    response = alice.client.patch(
        URL, data=json.dumps(flag_body(True)), headers={"Content-Type": media_type}
    )
    check_415(response.status_code, response.headers["Content-Type"], response.get_data())
    assert _tenant(test_app) == before


def test_a_jsonapi_profile_parameter_is_read(test_app: TestApp, alice: Browser) -> None:
    fresh_grant(alice)
    profile = f'{JSONAPI}; profile="https://example.com/profiles/audit"'
    response = alice.client.patch(
        URL, data=json.dumps(flag_body(True)), headers={"Content-Type": profile}
    )
    assert response.status_code == 200
    assert _flag(test_app) is True


class _Body:
    """A WSGI input holding ``data`` (sent as chunked transfer: no Content-Length)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) if n is None or n < 0 else n
        part, self.data = self.data[:n], self.data[n:]
        return part


@pytest.mark.parametrize(
    ("body", "code"), [p[1:] for p in BAD_BODIES], ids=[p[0] for p in BAD_BODIES]
)
def test_a_bad_chunked_body_without_a_length_is_a_400_too(
    test_app: TestApp, alice: Browser, body: bytes, code: str
) -> None:
    fresh_grant(alice)
    before = _tenant(test_app)
    response = alice.client.patch(
        URL,
        content_type=JSONAPI,
        environ_overrides={"wsgi.input": _Body(body), "wsgi.input_terminated": True},
    )
    check_400(response.status_code, response.headers["Content-Type"], response.get_data(), code)
    assert _tenant(test_app) == before


def test_a_good_chunked_body_without_a_length_is_read(test_app: TestApp, alice: Browser) -> None:
    fresh_grant(alice)
    body = json.dumps(flag_body(True)).encode()
    response = alice.client.patch(
        URL,
        content_type=JSONAPI,
        environ_overrides={"wsgi.input": _Body(body), "wsgi.input_terminated": True},
    )
    assert response.status_code == 200
    assert _flag(test_app) is True


def test_adding_and_removing_an_authenticator_app_revoke_every_grant(
    test_app: TestApp,
) -> None:
    from integrations.flask.test_totp_devices_journey import _DEVICE, _add

    assert set_flag(_admin(test_app), True).status_code == 200
    first, second = test_app.client(), test_app.client()
    for browser in (first, second):
        assert browser.login("bob").status_code == 303
    first.enrol()
    for browser in (first, second):
        fresh_grant(browser)
    _add(first, test_app, "Tablet")
    _no_grant_anywhere(first, second)
    tablet = _DEVICE.findall(first.get("/stepup/2fa").get_data(as_text=True))[-1]
    for browser in (first, second):
        fresh_grant(browser)
    assert first.form(f"/stepup/2fa/devices/{tablet}/remove", {}).status_code == 303
    assert tablet not in _DEVICE.findall(first.get("/stepup/2fa").get_data(as_text=True))
    _no_grant_anywhere(first, second)


def test_a_body_shorter_than_its_declared_length_is_a_jsonapi_400(
    test_app: TestApp, alice: Browser
) -> None:
    """The client sends fewer bytes than its Content-Length (and goes away): Werkzeug's
    reader gives up, and the answer is still the JSON:API 400, nothing changed."""
    fresh_grant(alice)
    before = _tenant(test_app)
    body = json.dumps(flag_body(True)).encode()
    response = alice.client.patch(
        URL,
        data=body,
        content_type=JSONAPI,
        environ_overrides={"CONTENT_LENGTH": str(len(body) + 5)},
    )
    check_400(
        response.status_code, response.headers["Content-Type"], response.get_data(), "invalid_json"
    )
    assert _tenant(test_app) == before


@pytest.mark.parametrize("accept", BAD_ACCEPTS)
def test_an_accept_no_jsonapi_answer_meets_is_a_406(
    test_app: TestApp, alice: Browser, accept: str
) -> None:
    fresh_grant(alice)
    before = _tenant(test_app)
    response = alice.patch(
        URL, data=json.dumps(flag_body(True)), content_type=JSONAPI, headers={"Accept": accept}
    )
    check_406(response.status_code, response.headers["Content-Type"], response.get_data())
    assert _tenant(test_app) == before


@pytest.mark.parametrize(("query", "parameter"), BAD_QUERIES)
def test_a_query_parameter_is_a_400_that_changes_nothing(
    test_app: TestApp, alice: Browser, query: str, parameter: str
) -> None:
    fresh_grant(alice)
    before = _tenant(test_app)
    response = alice.patch(URL + query, data=json.dumps(flag_body(True)), content_type=JSONAPI)
    check_query_400(
        response.status_code, response.headers["Content-Type"], response.get_data(), parameter
    )
    assert _tenant(test_app) == before
