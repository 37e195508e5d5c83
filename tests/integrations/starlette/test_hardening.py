"""Issue 12 in Starlette: the tenant PATCH is itself sensitive (item 2), bodies that are
not JSON:API are a 400 read with a streamed limit after the caller's authority is
settled (item 5), only ``True`` from a yes/no hook grants anything (item 6), factor
changes revoke grants and re-authentication renews the session id (item 9)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import TimestampSigner

from integrations.starlette.starlette_support import (
    PASSWORDS,
    SECRET_KEY,
    TENANT,
    Browser,
    TestApp,
    csrf_token,
    enrol,
    make_app,
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
from stepup.testing import SettableClock

URL = f"/stepup/tenants/{TENANT}"
TENANT_PAGE = "/settings/tenant"
JSONAPI = "application/vnd.api+json"


def _body(on: bool) -> dict[str, Any]:
    return {
        "data": {
            "type": "tenant",
            "attributes": {"feature_flags": {"sensitive_actions_reauth": on}},
        }
    }


def _patch(browser: Browser, on: bool, **headers: str) -> Any:
    return browser.client.patch(
        URL, content=json.dumps(_body(on)), headers={"Content-Type": JSONAPI, **headers}
    )


def _flag(test_app: TestApp) -> bool:
    tenant = test_app.store.get_tenant(TENANT)
    return tenant is not None and tenant.flag("sensitive_actions_reauth")


def _grant(browser: Browser) -> None:
    assert browser.client.post("/_test/grant", data={"method": ["pwd"]}).status_code == 204


def _session(browser: Browser) -> dict[str, Any]:
    """What Starlette's signed session cookie holds."""
    cookie = browser.client.cookies["session"]
    raw = TimestampSigner(SECRET_KEY).unsign(cookie.encode())
    return dict(json.loads(base64.b64decode(raw)))


# item 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize("flag_on", [False, True])
def test_patch_without_a_fresh_grant_is_401_with_the_reauth_details(
    test_app: TestApp, alice: Browser, flag_on: bool
) -> None:
    if flag_on:
        assert alice.patch_tenant(True).status_code == 200
    response = _patch(alice, not flag_on, Referer=f"http://testserver{TENANT_PAGE}")
    assert response.status_code == 401
    assert response.headers["content-type"] == JSONAPI
    error = only_error(response.json())
    assert (error["status"], error["code"]) == ("401", "reauth_required")
    answer = error["meta"]
    assert error["links"] == {"about": answer["reauth_url"]}
    assert answer["action"] == "tenant.settings.update"
    assert answer["methods"] == ["pwd"]
    query = parse_qs(urlsplit(answer["reauth_url"]).query)
    assert query == {"next": [TENANT_PAGE], "action": ["tenant.settings.update"]}
    assert _flag(test_app) is flag_on


def test_a_bearer_client_gets_the_rfc_9470_challenge(test_app: TestApp, alice: Browser) -> None:
    response = alice.client.patch(
        URL,
        content=json.dumps(_body(True)),
        headers={"Content-Type": JSONAPI, "Authorization": "Bearer alice-token"},
    )
    assert response.status_code == 401
    assert 'error="insufficient_user_authentication"' in response.headers["www-authenticate"]
    assert response.headers["content-type"] == JSONAPI
    assert only_error(response.json())["code"] == "reauth_required"
    assert _flag(test_app) is False


def test_the_tenant_page_flow_comes_back_after_reauth(test_app: TestApp, alice: Browser) -> None:
    refused = _patch(alice, True, Referer=f"http://testserver{TENANT_PAGE}")
    back = alice.reauth(only_error(refused.json())["meta"]["reauth_url"], PASSWORDS["alice"])
    assert back.status_code == 303
    assert back.headers["location"] == TENANT_PAGE
    assert _patch(alice, True).status_code == 200
    assert _patch(alice, False).status_code == 200
    assert _flag(test_app) is False


def test_a_non_admin_is_403(test_app: TestApp, bob: Browser) -> None:
    assert _patch(bob, True).status_code == 403


# item 5 -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 100_000, b"{" * 100_000, b"\xff\xfe"])
def test_a_body_that_is_not_json_is_a_jsonapi_400(
    test_app: TestApp, alice: Browser, body: bytes
) -> None:
    _grant(alice)
    response = alice.client.patch(URL, content=body, headers={"Content-Type": JSONAPI})
    assert response.status_code == 400
    assert response.headers["content-type"] == JSONAPI
    assert _flag(test_app) is False


def _patch_scope(browser: Browser, extra: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """The ASGI scope of a JSON:API PATCH of the tenant from ``browser``'s session,
    with ``extra`` headers."""
    cookie = "; ".join(f"{name}={value}" for name, value in browser.client.cookies.items())
    headers = [(b"host", b"testserver"), (b"content-type", JSONAPI.encode())]
    headers.append((b"cookie", cookie.encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers + extra,
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
    }


def _raw_patch(browser: Browser, chunks: int, length: int | None = None) -> tuple[int, int]:
    """PATCH straight into the ASGI app with a body of ``chunks`` chunks of 4 KiB sent
    one message at a time; answers (status, bytes the app took)."""
    extra = [] if length is None else [(b"content-length", str(length).encode())]
    scope = _patch_scope(browser, extra)
    sent = {"messages": 0, "status": 0}

    async def receive() -> dict[str, Any]:
        if sent["messages"] >= chunks:
            return {"type": "http.disconnect"}
        sent["messages"] += 1
        return {"type": "http.request", "body": b" " * 4096, "more_body": sent["messages"] < chunks}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent["status"] = message["status"]

    asyncio.run(browser.test_app.app(scope, receive, send))
    return sent["status"], sent["messages"] * 4096


def test_an_oversized_body_is_refused_without_reading_it_all(
    test_app: TestApp, alice: Browser
) -> None:
    _grant(alice)
    status, taken = _raw_patch(alice, chunks=5000)  # 20 MB on offer, no declared length
    assert status == 400
    assert taken <= MAX_BODY + 4096


def test_a_declared_oversized_length_is_refused_before_reading(
    test_app: TestApp, alice: Browser
) -> None:
    _grant(alice)
    status, taken = _raw_patch(alice, chunks=5000, length=5000 * 4096)
    assert status == 400
    assert taken == 0


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_authority_is_settled_before_the_body_is_read(
    test_app: TestApp, browsers: list[Browser], who: str
) -> None:
    browser = test_app.browser()
    browsers.append(browser)
    browser.login(who)  # alice has no fresh grant, bob is no admin
    status, taken = _raw_patch(browser, chunks=5000)
    assert status == (401 if who == "alice" else 403)
    assert taken == 0


# item 6 -------------------------------------------------------------------------------


@pytest.fixture
def lying_app(clock: SettableClock, request: pytest.FixtureRequest) -> TestApp:
    answer = request.param
    return make_app(
        clock=clock,
        store=MemoryStore(),
        is_tenant_admin=lambda subject, tenant: answer,
        has_full_access=lambda subject: answer,
    )


@pytest.mark.parametrize("lying_app", ["false", "0", 1, "True", "yes"], indirect=True)
def test_hooks_that_do_not_answer_true_grant_nothing(
    lying_app: TestApp, browsers: list[Browser]
) -> None:
    bob, alice = lying_app.browser(), lying_app.browser()
    browsers += [bob, alice]
    bob.login("bob")
    enrol(bob)
    alice.login("alice")
    _grant(alice)
    assert _patch(alice, True).status_code == 403
    assert _flag(lying_app) is False
    # Authorization first: the 403 before the page or any re-authentication.
    assert alice.get("/stepup/2fa/users/bob/remove").status_code == 403
    token = csrf_token(alice.get("/stepup/reauth?next=/&action=api_key.read").text)
    removal = alice.post("/stepup/2fa/users/bob/remove", data={"csrf_token": token})
    assert removal.status_code == 403
    assert lying_app.store.get_credential("bob") is not None


async def _only_for(subject: Any, user_id: str) -> bool:
    return user_id == "carol"  # an admin of carol's tenant: bob is in another


def test_a_full_access_hook_may_answer_for_the_user_acted_on(
    clock: SettableClock, browsers: list[Browser]
) -> None:
    """A hook that takes ``(subject, user_id)`` (async here) answers for that user."""
    app = make_app(clock=clock, store=MemoryStore(), has_full_access=_only_for)
    bob, alice = app.browser(), app.browser()
    browsers += [bob, alice]
    bob.login("bob")
    enrol(bob)
    alice.login("alice")
    _grant(alice)
    assert alice.get("/stepup/2fa/users/bob/remove").status_code == 403
    token = csrf_token(alice.get("/stepup/reauth?next=/&action=api_key.read").text)
    removal = alice.post("/stepup/2fa/users/bob/remove", data={"csrf_token": token})
    assert removal.status_code == 403
    assert app.store.get_credential("bob") is not None
    # ... and for carol, whom it answers for, the page (her grant is fresh).
    assert alice.get("/stepup/2fa/users/carol/remove").status_code == 200


# item 9 -------------------------------------------------------------------------------


def _two_sessions(test_app: TestApp, browsers: list[Browser]) -> tuple[Browser, Browser]:
    first, second = test_app.browser(), test_app.browser()
    browsers += [first, second]
    for browser in (first, second):
        assert browser.login("alice").status_code == 303
    assert first.patch_tenant(True).status_code == 200
    return first, second


def _grants_then(step: Any, *browsers: Browser) -> None:
    for browser in browsers:
        _grant(browser)
        assert browser.get("/api-key").status_code == 200
    step()
    for browser in browsers:
        # Gone from the store, not only outranked by a factor strongest-available now asks for.
        session = _session(browser)
        assert browser.test_app.store.get_grant(session["user"], session["sid"]) is None
        assert browser.get("/api-key").status_code == 303


def test_factor_changes_revoke_grants_in_every_session(
    test_app: TestApp, browsers: list[Browser]
) -> None:
    first, second = _two_sessions(test_app, browsers)
    _grants_then(lambda: enrol(first), first, second)
    _grants_then(lambda: first.form("/stepup/2fa/recovery-codes"), first, second)
    _grants_then(lambda: first.form("/stepup/2fa/remove"), first, second)


def test_an_admins_removal_revokes_the_users_grants(
    test_app: TestApp, browsers: list[Browser]
) -> None:
    admin, _ = _two_sessions(test_app, browsers)
    bob = test_app.browser()
    browsers.append(bob)
    bob.login("bob")
    enrol(bob)
    _grant(admin)
    _grants_then(lambda: admin.form("/stepup/2fa/users/bob/remove"), bob)


def test_reauth_renews_the_session_id_and_binds_the_grant_to_it(
    test_app: TestApp, alice: Browser, browsers: list[Browser]
) -> None:
    assert alice.patch_tenant(True).status_code == 200
    refused = alice.get("/api-key")
    assert refused.status_code == 303
    old_cookie = alice.client.cookies["session"]
    old = _session(alice)["sid"]
    assert alice.reauth(refused.headers["location"], PASSWORDS["alice"]).status_code == 303
    new = _session(alice)["sid"]
    assert new != old
    assert alice.get("/api-key").status_code == 200
    assert test_app.store.get_grant("alice", old) is None
    assert test_app.store.get_grant("alice", new) is not None
    stale = test_app.browser()
    browsers.append(stale)
    stale.client.cookies.set("session", old_cookie)
    assert stale.get("/api-key").status_code == 303


def test_an_apps_renew_session_hook_is_used(clock: SettableClock, browsers: list[Browser]) -> None:
    renewed: list[str] = []

    def renew(request: Any) -> None:
        request.session["sid"] = "renewed-by-the-app"
        renewed.append(request.session["user"])

    test_app = make_app(clock=clock, store=MemoryStore(), renew_session=renew)
    alice = test_app.browser()
    browsers.append(alice)
    alice.login("alice")
    assert alice.patch_tenant(True).status_code == 200
    refused = alice.get("/api-key")
    assert alice.reauth(refused.headers["location"], PASSWORDS["alice"]).status_code == 303
    assert renewed == ["alice"]
    assert test_app.store.get_grant("alice", "renewed-by-the-app") is not None
    assert alice.get("/api-key").status_code == 200


# item 5, probed: every body json.loads or the seed would not take, every media type ----


@pytest.mark.parametrize(
    ("body", "code"), [p[1:] for p in BAD_BODIES], ids=[p[0] for p in BAD_BODIES]
)
def test_every_bad_body_is_a_jsonapi_400_and_changes_nothing(
    test_app: TestApp, alice: Browser, body: bytes, code: str
) -> None:
    _grant(alice)
    before = test_app.store.get_tenant(TENANT)
    response = alice.client.patch(URL, content=body, headers={"Content-Type": JSONAPI})
    check_400(response.status_code, response.headers["content-type"], response.content, code)
    assert test_app.store.get_tenant(TENANT) == before


@pytest.mark.parametrize("media_type", BAD_MEDIA_TYPES)
def test_a_media_type_the_endpoint_does_not_read_is_a_415(
    test_app: TestApp, alice: Browser, media_type: str
) -> None:
    _grant(alice)
    before = test_app.store.get_tenant(TENANT)
    headers = {"Content-Type": media_type} if media_type else {}
    response = alice.client.patch(URL, content=json.dumps(_body(True)), headers=headers)
    check_415(response.status_code, response.headers["content-type"], response.content)
    assert test_app.store.get_tenant(TENANT) == before


def test_a_jsonapi_profile_parameter_is_read(test_app: TestApp, alice: Browser) -> None:
    _grant(alice)
    profile = f'{JSONAPI}; profile="https://example.com/profiles/audit"'
    response = alice.client.patch(
        URL, content=json.dumps(_body(True)), headers={"Content-Type": profile}
    )
    assert response.status_code == 200
    assert _flag(test_app) is True


def _chunked(browser: Browser, body: bytes, *, gone: bool = False) -> tuple[int, str, bytes]:
    """PATCH ``body`` straight into the ASGI app in 1 KiB messages with no
    Content-Length (chunked transfer), or (``gone``) a first message saying more is
    coming and then the client's disconnect; answers (status, content type, body)."""
    scope = _patch_scope(browser, [])
    parts = [body[i : i + 1024] for i in range(0, len(body), 1024)] or [b""]
    if gone:
        parts = parts[:1]
    answer: dict[str, Any] = {"status": 0, "type": "", "body": b""}

    async def receive() -> dict[str, Any]:
        if not parts:
            return {"type": "http.disconnect"}
        more = gone or len(parts) > 1
        return {"type": "http.request", "body": parts.pop(0), "more_body": more}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            found = dict(message["headers"])
            answer["type"] = found.get(b"content-type", b"").decode()
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    asyncio.run(browser.test_app.app(scope, receive, send))
    return answer["status"], answer["type"], answer["body"]


@pytest.mark.parametrize(
    ("body", "code"), [p[1:] for p in BAD_BODIES], ids=[p[0] for p in BAD_BODIES]
)
def test_a_bad_chunked_body_without_a_length_is_a_400_too(
    test_app: TestApp, alice: Browser, body: bytes, code: str
) -> None:
    _grant(alice)
    before = test_app.store.get_tenant(TENANT)
    check_400(*_chunked(alice, body), code)
    assert test_app.store.get_tenant(TENANT) == before


def test_a_good_chunked_body_without_a_length_is_read(test_app: TestApp, alice: Browser) -> None:
    _grant(alice)
    status, _, _ = _chunked(alice, json.dumps(_body(True)).encode())
    assert status == 200
    assert _flag(test_app) is True


def test_a_client_gone_mid_body_is_a_jsonapi_400_not_a_500(
    test_app: TestApp, alice: Browser
) -> None:
    _grant(alice)
    before = test_app.store.get_tenant(TENANT)
    check_400(*_chunked(alice, json.dumps(_body(True)).encode(), gone=True), "invalid_json")
    assert test_app.store.get_tenant(TENANT) == before


@pytest.mark.parametrize("accept", BAD_ACCEPTS)
def test_an_accept_no_jsonapi_answer_meets_is_a_406(
    test_app: TestApp, alice: Browser, accept: str
) -> None:
    _grant(alice)
    before = test_app.store.get_tenant(TENANT)
    headers = {"Content-Type": JSONAPI, "Accept": accept}
    response = alice.client.patch(URL, content=json.dumps(_body(True)), headers=headers)
    check_406(response.status_code, response.headers["content-type"], response.content)
    assert test_app.store.get_tenant(TENANT) == before


@pytest.mark.parametrize(("query", "parameter"), BAD_QUERIES)
def test_a_query_parameter_is_a_400_that_changes_nothing(
    test_app: TestApp, alice: Browser, query: str, parameter: str
) -> None:
    _grant(alice)
    before = test_app.store.get_tenant(TENANT)
    headers = {"Content-Type": JSONAPI}
    response = alice.client.patch(URL + query, content=json.dumps(_body(True)), headers=headers)
    check_query_400(
        response.status_code, response.headers["content-type"], response.content, parameter
    )
    assert test_app.store.get_tenant(TENANT) == before


def test_adding_and_removing_an_authenticator_app_revoke_grants_in_every_session(
    test_app: TestApp, browsers: list[Browser], clock: SettableClock
) -> None:
    from integrations.starlette.test_totp_devices_journey import _DEVICE, SETTINGS, _add, _post

    first, second = _two_sessions(test_app, browsers)
    enrol(first)
    _grants_then(lambda: _add(first, clock, "Tablet"), first, second)
    tablet = _DEVICE.findall(first.get(SETTINGS).text)[-1]
    _grants_then(lambda: _post(first, f"/stepup/2fa/devices/{tablet}/remove"), first, second)
    assert tablet not in _DEVICE.findall(first.get(SETTINGS).text)
