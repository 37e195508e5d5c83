"""Issue 12 in Django: the tenant PATCH is itself sensitive (item 2), bodies that are not
JSON:API are a 400 read with a limit after the caller's authority is settled (item 5),
only ``True`` from a yes/no hook grants anything (item 6), factor changes revoke grants
and re-authentication renews the session (item 9)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from integrations.django.django_support import (
    PASSWORDS,
    TENANT,
    Browser,
    Site,
    flag_body,
    fresh_grant,
    running_site,
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
from stepup.testing import SettableClock

URL = f"/stepup/tenants/{TENANT}"
TENANT_PAGE = "/settings/tenant/"
JSONAPI = "application/vnd.api+json"


def _flag() -> bool:
    from stepup.integrations.django.services import get_stepup

    tenant = get_stepup().store.get_tenant(TENANT)
    return tenant is not None and tenant.flag("sensitive_actions_reauth")


def _patch(browser: Browser, on: bool, **extra: str) -> Any:
    return browser.patch(URL, data=flag_body(on), content_type=JSONAPI, **extra)


# item 2 -------------------------------------------------------------------------------


@pytest.mark.parametrize("flag_on", [False, True])
def test_patch_without_a_fresh_grant_is_401_with_the_reauth_details(
    site: Site, alice: Browser, flag_on: bool
) -> None:
    if flag_on:
        assert set_flag(alice, True).status_code == 200
    response = _patch(alice, not flag_on, HTTP_REFERER=f"http://testserver{TENANT_PAGE}")
    assert response.status_code == 401
    assert response["Content-Type"] == JSONAPI
    error = only_error(response.json())
    assert (error["status"], error["code"]) == ("401", "reauth_required")
    answer = error["meta"]
    assert error["links"] == {"about": answer["reauth_url"]}
    assert answer["action"] == "tenant.settings.update"
    assert answer["methods"] == ["pwd"]
    query = parse_qs(urlsplit(answer["reauth_url"]).query)
    assert query == {"next": [TENANT_PAGE], "action": ["tenant.settings.update"]}
    assert _flag() is flag_on


def test_a_bearer_client_gets_the_rfc_9470_challenge(site: Site) -> None:
    response = Browser(site).patch(
        URL, data=flag_body(True), content_type=JSONAPI, HTTP_AUTHORIZATION="Bearer token-alice"
    )
    assert response.status_code == 401
    assert 'error="insufficient_user_authentication"' in response["WWW-Authenticate"]
    assert response["Content-Type"] == JSONAPI
    assert only_error(response.json())["code"] == "reauth_required"
    assert _flag() is False


def test_the_tenant_page_flow_comes_back_after_reauth(site: Site, alice: Browser) -> None:
    refused = _patch(alice, True, HTTP_REFERER=f"http://testserver{TENANT_PAGE}")
    back = alice.reauth(only_error(refused.json())["meta"]["reauth_url"], PASSWORDS["alice"])
    assert back.status_code == 303
    assert back["Location"] == TENANT_PAGE
    assert _patch(alice, True).status_code == 200
    assert _patch(alice, False).status_code == 200
    assert _flag() is False


def test_a_non_admin_is_403(site: Site, bob: Browser) -> None:
    assert _patch(bob, True).status_code == 403


# item 5 -------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 100_000, b"{" * 100_000, b"\xff\xfe"])
def test_a_body_that_is_not_json_is_a_jsonapi_400(site: Site, alice: Browser, body: bytes) -> None:
    fresh_grant(alice)
    response = alice.patch(URL, data=body, content_type=JSONAPI)
    assert response.status_code == 400
    assert response["Content-Type"] == JSONAPI
    assert _flag() is False


class _Counting:
    def __init__(self, size: int) -> None:
        self.left, self.taken = size, 0

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        self.taken += n
        return b" " * n

    def readline(self, n: int = -1) -> bytes:
        return self.read(n)


def _stream_patch(browser: Browser, stream: _Counting, length: int) -> Any:
    return browser.client.generic(
        "PATCH",
        URL,
        b"",
        content_type=JSONAPI,
        **{"wsgi.input": stream, "CONTENT_LENGTH": str(length), "CONTENT_TYPE": JSONAPI},
    )


def test_an_oversized_body_is_refused_without_reading_it(site: Site, alice: Browser) -> None:
    fresh_grant(alice)
    stream = _Counting(20 * 1024 * 1024)
    response = _stream_patch(alice, stream, 20 * 1024 * 1024)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "too_large"
    assert stream.taken == 0


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_authority_is_settled_before_the_body_is_read(site: Site, who: str) -> None:
    browser = site.browser(who)  # alice has no fresh grant, bob is no admin
    stream = _Counting(1000)
    response = _stream_patch(browser, stream, 1000)
    assert response.status_code == (401 if who == "alice" else 403)
    assert stream.taken == 0


# item 6 -------------------------------------------------------------------------------


@pytest.fixture
def lying_hooks(clock: SettableClock, request: pytest.FixtureRequest) -> Iterator[Site]:
    answer = request.param
    with running_site(
        MemoryStore(),
        clock,
        IS_TENANT_ADMIN=lambda subject, tenant_id: answer,
        HAS_FULL_ACCESS=lambda subject: answer,
    ) as running:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure(TENANT)
        yield running


@pytest.mark.parametrize("lying_hooks", ["false", "0", 1, "True", "yes"], indirect=True)
def test_hooks_that_do_not_answer_true_grant_nothing(lying_hooks: Site) -> None:
    from stepup.integrations.django.services import get_stepup

    bob = lying_hooks.browser("bob")
    bob.enrol()
    alice = lying_hooks.browser("alice")
    fresh_grant(alice)
    assert _patch(alice, True).status_code == 403
    assert _flag() is False
    removal = alice.form(f"/stepup/users/{_user('bob')}/2fa/remove/", {})
    assert removal.status_code == 403
    assert get_stepup().two_factor.is_enrolled(_user("bob"))


def _user(name: str) -> str:
    from integrations.django.django_support import user_id

    return user_id(name)


# item 9 -------------------------------------------------------------------------------


def _two_sessions_with_grants(site: Site) -> tuple[Browser, Browser]:
    first, second = site.browser("alice"), site.browser("alice")
    assert set_flag(first, True).status_code == 200
    for browser in (first, second):
        fresh_grant(browser)
        assert browser.get("/api-key/").status_code == 200
    return first, second


def _no_grant(*browsers: Browser) -> None:
    from stepup.integrations.django.services import get_stepup

    for browser in browsers:
        # Gone from the store, not only outranked by a factor strongest-available now asks for.
        session = browser.client.session
        user, sid = session["_auth_user_id"], session["_stepup_sid"]
        assert get_stepup().store.get_grant(user, sid) is None
        assert browser.get("/api-key/").status_code == 303


def test_enrolling_revokes_grants_in_every_session(site: Site) -> None:
    first, second = _two_sessions_with_grants(site)
    first.enrol()
    _no_grant(first, second)


def test_regenerating_and_removing_revoke_grants_in_every_session(site: Site) -> None:
    first, second = _two_sessions_with_grants(site)
    first.enrol()
    for step in ("/stepup/2fa/recovery-codes/", "/stepup/2fa/remove/"):
        fresh_grant(first)
        fresh_grant(second)
        assert first.form(step, {}).status_code in {200, 303}
        _no_grant(first, second)


def test_an_admins_removal_revokes_the_users_grants(site: Site) -> None:
    bob = site.browser("bob")
    bob.enrol()
    admin = site.browser("alice")
    assert set_flag(admin, True).status_code == 200
    fresh_grant(bob)
    assert bob.get("/api-key/").status_code == 200
    fresh_grant(admin)
    assert admin.form(f"/stepup/users/{_user('bob')}/2fa/remove/", {}).status_code == 303
    _no_grant(bob)


def test_reauth_renews_the_session_and_binds_the_grant_to_it(site: Site, alice: Browser) -> None:
    from django.conf import settings

    from stepup.integrations.django.services import get_stepup

    assert set_flag(alice, True).status_code == 200
    refused = alice.get("/api-key/")
    assert refused.status_code == 303
    old_key = alice.client.cookies[settings.SESSION_COOKIE_NAME].value
    old_sid = alice.client.session["_stepup_sid"]
    assert alice.reauth(refused["Location"], PASSWORDS["alice"]).status_code == 303
    new_key = alice.client.cookies[settings.SESSION_COOKIE_NAME].value
    new_sid = alice.client.session["_stepup_sid"]
    assert new_key != old_key
    assert new_sid != old_sid
    assert alice.get("/api-key/").status_code == 200
    store = get_stepup().store
    assert store.get_grant(_user("alice"), old_sid) is None
    assert store.get_grant(_user("alice"), new_sid) is not None
    # The old session key no longer opens a session.
    stale = Browser(site)
    stale.client.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert stale.get("/api-key/").status_code == 302  # to the sign-in page


# item 5, probed: every body json.loads or the seed would not take, every media type ----


def _tenant() -> Any:
    from stepup.integrations.django.services import get_stepup

    return get_stepup().store.get_tenant(TENANT)


@pytest.mark.parametrize(
    ("body", "code"), [p[1:] for p in BAD_BODIES], ids=[p[0] for p in BAD_BODIES]
)
def test_every_bad_body_is_a_jsonapi_400_and_changes_nothing(
    site: Site, alice: Browser, body: bytes, code: str
) -> None:
    fresh_grant(alice)
    before = _tenant()
    # The header named even for an empty body (Django's client drops it then).
    response = alice.client.generic("PATCH", URL, body, content_type=JSONAPI, CONTENT_TYPE=JSONAPI)
    check_400(response.status_code, response["Content-Type"], response.content, code)
    assert _tenant() == before


@pytest.mark.parametrize("media_type", BAD_MEDIA_TYPES)
def test_a_media_type_the_endpoint_does_not_read_is_a_415(
    site: Site, alice: Browser, media_type: str
) -> None:
    fresh_grant(alice)
    before = _tenant()
    response = alice.patch(URL, data=flag_body(True), content_type=media_type)
    check_415(response.status_code, response["Content-Type"], response.content)
    assert _tenant() == before


def test_a_jsonapi_profile_parameter_is_read(site: Site, alice: Browser) -> None:
    fresh_grant(alice)
    profile = f'{JSONAPI}; profile="https://example.com/profiles/audit"'
    assert alice.patch(URL, data=flag_body(True), content_type=profile).status_code == 200
    assert _flag() is True


@pytest.mark.parametrize("body", [flag_body(True).encode(), b"[" * 30_000, b"x" * (2 * MAX_BODY)])
def test_a_chunked_body_without_a_length_is_a_400_and_changes_nothing(
    site: Site, alice: Browser, body: bytes
) -> None:
    """Django's WSGI request reads no body without a Content-Length (chunked transfer):
    whatever was sent, the endpoint sees an empty body, a 400, and stores nothing."""
    fresh_grant(alice)
    before = _tenant()
    stream = _Counting(len(body))
    response = alice.client.generic(
        "PATCH",
        URL,
        b"",
        content_type=JSONAPI,
        **{"wsgi.input": stream, "CONTENT_LENGTH": "", "CONTENT_TYPE": JSONAPI},
    )
    check_400(response.status_code, response["Content-Type"], response.content, "invalid_json")
    assert _tenant() == before


class _Body:
    """A WSGI input holding fewer bytes than the request declares."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int = -1) -> bytes:
        n = len(self.data) if n is None or n < 0 else n
        part, self.data = self.data[:n], self.data[n:]
        return part

    def readline(self, n: int = -1) -> bytes:
        return self.read(n)


def test_a_body_shorter_than_its_declared_length_is_a_jsonapi_400(
    site: Site, alice: Browser
) -> None:
    fresh_grant(alice)
    before = _tenant()
    body = flag_body(True).encode()
    # The client went away 3 bytes short: Django's reader ends there.
    environ = {"wsgi.input": _Body(body[:-3]), "CONTENT_LENGTH": str(len(body))}
    response = alice.client.generic(
        "PATCH", URL, b"", content_type=JSONAPI, **environ, CONTENT_TYPE=JSONAPI
    )
    check_400(response.status_code, response["Content-Type"], response.content, "invalid_json")
    assert _tenant() == before


@pytest.mark.parametrize("accept", BAD_ACCEPTS)
def test_an_accept_no_jsonapi_answer_meets_is_a_406(
    site: Site, alice: Browser, accept: str
) -> None:
    fresh_grant(alice)
    before = _tenant()
    response = alice.patch(URL, data=flag_body(True), content_type=JSONAPI, HTTP_ACCEPT=accept)
    check_406(response.status_code, response["Content-Type"], response.content)
    assert _tenant() == before


@pytest.mark.parametrize(("query", "parameter"), BAD_QUERIES)
def test_a_query_parameter_is_a_400_that_changes_nothing(
    site: Site, alice: Browser, query: str, parameter: str
) -> None:
    fresh_grant(alice)
    before = _tenant()
    response = alice.patch(URL + query, data=flag_body(True), content_type=JSONAPI)
    check_query_400(response.status_code, response["Content-Type"], response.content, parameter)
    assert _tenant() == before


def test_adding_and_removing_an_authenticator_app_revoke_grants_in_every_session(
    site: Site,
) -> None:
    from integrations.django.test_totp_devices_journey import _DEVICE, _add, _page

    assert set_flag(site.browser("alice"), True).status_code == 200
    first, second = site.browser("bob"), site.browser("bob")
    first.enrol()
    for browser in (first, second):
        fresh_grant(browser)
    _add(first, site, "Tablet")
    _no_grant(first, second)
    tablet = _DEVICE.findall(_page(first))[-1]
    for browser in (first, second):
        fresh_grant(browser)
    assert first.form(f"/stepup/2fa/devices/{tablet}/remove/", {}).status_code == 303
    assert tablet not in _DEVICE.findall(_page(first))
    _no_grant(first, second)
