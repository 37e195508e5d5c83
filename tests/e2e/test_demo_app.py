"""The demo app without a browser: its forms, its refusals, what it prints and stores."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from e2e.journeys import ADMIN, MEMBER, PASSWORDS
from stepup.demo.keys import new_demo_ssh_key, read_ssh_key
from stepup.demo.seed import prepare
from stepup.demo.status import grant_status, human_duration
from stepup.errors import MalformedInputError
from stepup.policy import Sensitivity
from stepup.reauth import Allowed, AllowReason, ReauthRequired, ReauthUnavailable
from stepup.testing import SettableClock

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FLAG_ON = '{"data": {"type": "tenant", "attributes": {"feature_flags": {"sensitive_actions_reauth": true}}}}'
JSONAPI = {"Content-Type": "application/vnd.api+json"}


def csrf(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: Any, email: str, password: str | None = None) -> Any:
    page = client.get("/login")
    data = {"csrf_token": csrf(page.text), "email": email, "password": password or PASSWORDS[email]}
    return client.post("/login", data=data)


def flag_on(client: Any) -> None:
    """Turn the tenant flag on as its admin, straight through stepup's tenant settings:
    the PATCH endpoint wants a fresh re-authentication of its own (which would leave a
    grant that these tests must not have)."""
    from functools import partial

    from stepup.tenants import AsyncTenantSettings

    demo = client.app.state.demo
    settings = AsyncTenantSettings(demo.store, clock=demo.clock, events=demo.stepup.events)
    patch = partial(settings.patch, "acme", FLAG_ON, actor_id="admin", actor_is_tenant_admin=True)
    client.portal.call(patch)


def banner(html: str) -> str:
    match = re.search(r'data-state="(\w+)"', html)
    assert match is not None, "no grant banner"
    return match.group(1)


def test_demo_forms_need_their_csrf_token(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    page = client.get("/login")
    data = {"email": ADMIN, "password": PASSWORDS[ADMIN]}
    assert client.post("/login", data=data).status_code == 403
    assert client.post("/login", data={**data, "csrf_token": "forged"}).status_code == 403
    assert client.post("/login", data={**data, "csrf_token": csrf(page.text)}).status_code == 303
    # A token issued before sign-in does not work for the signed-in session.
    form = {"csrf_token": csrf(page.text), "name": "X", "email": ADMIN}
    assert client.post("/account/edit", data=form).status_code == 403


def test_sign_in_guessing_is_throttled(app_client: tuple[Any, SettableClock]) -> None:
    client, clock = app_client
    statuses = [sign_in(client, MEMBER, "wrong").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    paused = sign_in(client, MEMBER)
    assert paused.status_code == 429  # even the right one, for now
    assert "trying again is paused until" in paused.text  # says why, and until when
    clock.advance(31)
    assert sign_in(client, MEMBER).headers["location"] == "/account"


def test_unknown_email_gets_the_same_answer(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    unknown = sign_in(client, "nobody@acme.test", "whatever")
    wrong = sign_in(client, ADMIN, "whatever")
    assert unknown.status_code == wrong.status_code == 401
    assert "Wrong email or password." in unknown.text
    assert "Wrong email or password." in wrong.text


def test_admin_pages_and_flag_are_for_admins(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    sign_in(client, MEMBER)
    assert client.get("/users").status_code == 403
    refused = client.patch("/stepup/tenants/acme", content=FLAG_ON, headers=JSONAPI)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["code"] == "forbidden"


def test_the_menu_marks_the_page_you_are_on(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    for path, label in [
        ("/account", "Account"),
        ("/api-keys", "API keys"),
        ("/stepup/passkeys", "Passkeys"),  # one of stepup's own pages, in the demo's frame
        ("/workspaces", "Workspaces"),
        ("/tenant", "Tenant"),
    ]:
        html = client.get(path).text
        current = re.findall(r'<a href="([^"]+)" aria-current="page">([^<]+)</a>', html)
        assert current == [(path, label)], (path, current)


def test_banner_and_json_answers_follow_the_core(app_client: tuple[Any, SettableClock]) -> None:
    client, clock = app_client
    sign_in(client, ADMIN)
    assert banner(client.get("/account").text) == "off"
    # Changing tenant settings always asks for a fresh re-authentication first.
    asked = client.patch("/stepup/tenants/acme", content=FLAG_ON, headers=JSONAPI)
    assert asked.status_code == 401
    assert asked.headers["content-type"] == "application/vnd.api+json"
    assert asked.json()["errors"][0]["meta"]["action"] == "tenant.settings.update"
    assert banner(client.get("/account").text) == "off"
    flag_on(client)
    assert banner(client.get("/account").text) == "stale"

    # The copy button's request is JSON: 401 with where to re-authenticate.
    copy = client.get("/api-keys/1/copy", headers={"Accept": "application/json"})
    assert copy.status_code == 401
    assert copy.json()["action"] == "api_key.copy"
    reauth_url = copy.json()["reauth_url"]
    page = client.get(reauth_url)
    done = client.post(
        reauth_url, data={"csrf_token": csrf(page.text), "password": PASSWORDS[ADMIN]}
    )
    assert done.headers["location"] == "/api-keys/1/copy"
    copied = client.get("/api-keys/1/copy", headers={"Accept": "application/json"})
    assert copied.status_code == 200
    assert copied.json()["key"].startswith("sk_demo_")
    assert copied.headers["cache-control"] == "private, no-store"  # a guard let it through

    assert "allowed for 6 h more" in client.get("/account").text
    clock.advance(4 * 3600 + 90)
    assert "allowed for 1 h 58 min more" in client.get("/account").text
    clock.advance(2 * 3600)
    assert banner(client.get("/account").text) == "stale"


def test_the_banner_shows_the_state_the_view_left(app_client: tuple[Any, SettableClock]) -> None:
    """Enrolling revokes the user's grants: the recovery codes page it answers with says
    so, not the fresh grant the request started with."""
    from stepup.totp import TOTP

    client, clock = app_client
    sign_in(client, ADMIN)
    flag_on(client)
    key = client.get("/api-keys/1")
    page = client.get(key.headers["location"])
    client.post(
        key.headers["location"], data={"csrf_token": csrf(page.text), "password": PASSWORDS[ADMIN]}
    )
    enrol = client.post(
        "/stepup/2fa/enrol", data={"csrf_token": csrf(client.get("/stepup/2fa").text)}
    )
    assert banner(enrol.text) == "fresh"
    assert "allowed for 6 h more" in enrol.text
    shown = re.search(r'id="stepup-manual-key">([^<]+)</code>', enrol.text)
    assert shown is not None
    code = TOTP(shown.group(1).replace(" ", "")).at(clock())
    codes = client.post("/stepup/2fa/confirm", data={"csrf_token": csrf(enrol.text), "code": code})
    assert codes.status_code == 200
    assert "Your recovery codes" in codes.text
    assert codes.text.count('id="grant-status"') == 1
    assert banner(codes.text) == "stale"  # the grants enrolling revoked
    assert "allowed for" not in codes.text
    assert banner(client.get("/account").text) == "stale"


def test_a_signed_out_page_has_no_banner(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    assert 'id="grant-status"' not in client.get("/login").text
    sign_in(client, MEMBER)
    account = client.get("/account")
    assert account.headers["content-length"] == str(len(account.content))
    assert banner(account.text) == "off"
    assert "<!--grant-status-->" not in account.text


def test_the_audit_log_keeps_no_session_ids_or_secrets(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    flag_on(client)
    key = client.get("/api-keys/1")
    page = client.get(key.headers["location"])
    client.post(
        key.headers["location"], data={"csrf_token": csrf(page.text), "password": PASSWORDS[ADMIN]}
    )
    secret = re.search(r'id="api-key-value"[^>]*value="([^"]+)"', client.get("/api-keys/1").text)
    assert secret is not None
    audit = client.get("/audit").text
    assert "ReauthSucceeded" in audit
    assert "ApiKeyRead" in audit
    assert "session_id" not in audit
    assert secret.group(1) not in audit
    assert PASSWORDS[ADMIN] not in audit


def test_prepare_is_idempotent(tmp_path: Path) -> None:
    from argon2 import PasswordHasher

    from stepup.adapters.idp.password import CHEAPEST

    clock = SettableClock()
    cheap = PasswordHasher.from_parameters(CHEAPEST)
    first = prepare(tmp_path / "demo.sqlite3", clock=clock, hasher=cheap)
    second = prepare(tmp_path / "demo.sqlite3", clock=clock, hasher=cheap)
    assert first.seeded_now
    assert not second.seeded_now
    assert first.secret_key == second.secret_key
    assert first.secret_key not in repr(first)


def test_grant_status_words() -> None:
    fresh = Allowed("user.update", AllowReason.FRESH_GRANT, valid_until=1000.0 + 3 * 3600)
    assert grant_status(fresh, 1000.0).text.endswith("allowed for 3 h more.")
    assert grant_status(Allowed("user.update", AllowReason.FLAG_OFF), 0).state == "off"
    stale = ReauthRequired("user.update", Sensitivity.SENSITIVE, ("pwd",), 21600.0, 0.0)
    assert grant_status(stale, 7 * 3600).text.startswith("Last re-authenticated 7 h ago")
    never = ReauthRequired("user.update", Sensitivity.SENSITIVE, ("pwd",), 21600.0, None)
    assert grant_status(never, 0).text.startswith("No recent re-authentication")
    assert grant_status(ReauthUnavailable("user.update"), 0).state == "unavailable"


@given(st.floats(min_value=0, max_value=400 * 24 * 3600))
def test_human_duration_reads_back(seconds: float) -> None:
    text = human_duration(seconds)
    if seconds < 60:
        assert text == "less than a minute"
        return
    match = re.fullmatch(r"(?:(\d+) h)? ?(?:(\d+) min)?", text)
    assert match is not None
    assert text.strip() == text
    minutes = int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
    assert minutes == int(seconds // 60)
    assert int(match.group(2) or 0) < 60


@given(st.text(max_size=300))
def test_anything_pasted_as_an_ssh_key_is_read_or_refused(text: str) -> None:
    try:
        line, fingerprint = read_ssh_key(text)
    except MalformedInputError as exc:  # one of two fixed messages: never the input
        assert str(exc) in {
            "Paste one OpenSSH public key line.",
            "This is not an OpenSSH public key.",
        }
    else:
        assert fingerprint.startswith("SHA256:")
        assert line in " ".join(text.split())


def test_a_real_key_keeps_its_fingerprint() -> None:
    line, fingerprint = new_demo_ssh_key("me@host")
    assert read_ssh_key(f"  {line}\n") == (line, fingerprint)
    with pytest.raises(MalformedInputError):
        read_ssh_key(line.replace("AAAA", "BBBB", 1))


def test_a_wrong_sign_in_points_at_its_fields_and_the_banner_is_a_named_region(
    app_client: tuple[Any, SettableClock],
) -> None:
    """WCAG 3.3.1: the fields the message is about point at it (both: it does not say
    which was wrong), and the password takes the focus; axe's ``region``: the banner is
    in a named landmark; ``empty-table-header``: the actions column has a header."""
    client, _ = app_client
    first = client.get("/login").text
    assert "aria-invalid" not in first
    wrong = sign_in(client, MEMBER, "wrong").text
    for field in ("email", "password"):
        tag = re.search(rf'<input id="{field}"[^>]*>', wrong)
        assert tag is not None
        assert 'aria-invalid="true"' in tag.group(0)
        assert 'aria-describedby="login-error"' in tag.group(0)
    password = re.search(r'<input id="password"[^>]*>', wrong)
    email = re.search(r'<input id="email"[^>]*>', wrong)
    assert password is not None
    assert "autofocus" in password.group(0)
    assert email is not None
    assert "autofocus" not in email.group(0)
    sign_in(client, MEMBER)
    account = client.get("/account").text
    assert re.search(
        r'<section aria-label="Re-authentication status"[^>]*>\s*<p id="grant-status"', account
    )
    keys = client.get("/api-keys").text
    assert "<th></th>" not in keys
    assert '<th><span class="visually-hidden">Actions</span></th>' in keys


def test_authenticator_apps_and_passkeys_name_the_account_by_e_mail(
    app_client: tuple[Any, SettableClock],
) -> None:
    """An authenticator app lists the demo's account as the address the person signs in
    with, not as the internal user id (``admin``)."""
    import anyio

    client, _ = app_client
    stepup = client.app.state.demo.stepup  # type: ignore[attr-defined]
    assert anyio.run(stepup.account_name, "admin") == ADMIN
    assert anyio.run(stepup.account_name, "nobody") == "nobody"


@pytest.mark.parametrize("email", ['"a:b"@acme.test', "x" * 250 + "@acme.test"])
def test_an_address_no_key_uri_carries_names_the_account_by_its_id(
    app_client: tuple[Any, SettableClock], email: str
) -> None:
    """An address with a quoted ``:`` (RFC 5321 allows it) or longer than any address
    cannot be an authenticator app's label: the user id names the account, and turning
    on the app still works."""
    import anyio

    client, _ = app_client
    demo = client.app.state.demo  # type: ignore[attr-defined]

    async def rename() -> None:
        await demo.data.update_user("admin", name="Admin", email=email)

    anyio.run(rename)
    assert anyio.run(demo.stepup.account_name, "admin") == "admin"
