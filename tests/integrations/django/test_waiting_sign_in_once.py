"""Django: a sign-in waiting for its second factor completes once, with the session in a
signed cookie (``SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"``)
as with the default database sessions. A copy of the session cookie kept while the
sign-in waited, put in another browser after the owner finished (or signed out, or
signed in anew), is refused with a new code, an unused recovery code or a passkey, as an
expired sign-in, and signs nobody in. A wrong code leaves the sign-in waiting; a store
that cannot keep or spend it fails closed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from integrations.django.django_support import (
    Browser,
    Site,
    changes_factors,
    confirm_factors,
    running_site,
)
from integrations.waiting_sign_in_support import WaitingSignInsDown
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

VERIFY = "/stepup/2fa/verify/"
BEGIN = "/stepup/2fa/verify/passkey/begin"
FINISH = "/stepup/2fa/verify/passkey/finish"
EXPIRED = "Your sign-in has expired"
ORIGIN = "http://localhost"
PASSKEYS = {"PASSKEYS_RP_ID": "localhost", "PASSKEYS_ORIGINS": [ORIGIN]}
SIGNED_COOKIES = "django.contrib.sessions.backends.signed_cookies"
DATABASE = "django.contrib.sessions.backends.db"


@pytest.fixture(params=[SIGNED_COOKIES, DATABASE], ids=["signed_cookies", "db"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextmanager
def _site(engine: str, clock: SettableClock, **stepup: Any) -> Iterator[Site]:
    with (
        override_settings(SESSION_ENGINE=engine),
        running_site(WaitingSignInsDown(), clock, **stepup) as site,
    ):
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        yield site


@pytest.fixture
def site(engine: str, clock: SettableClock) -> Iterator[Site]:
    with _site(engine, clock) as running:
        yield running


def _enrolled_bob(site: Site) -> tuple[str, list[str]]:
    bob = site.browser("bob")
    secret, codes = bob.enrol()
    bob.logout()
    site.clock.advance(30)  # the code that confirmed the enrolment is spent
    return secret, codes


def _waiting(site: Site, name: str = "bob", url: str = "/login/") -> Browser:
    browser = Browser(site)
    data = {"username": name, "password": "battery staple", "next": "/home/"}
    if name == "alice":
        data["password"] = "correct horse"
    started = browser.client.post(url, data)
    assert (started.status_code, started["Location"]) == (303, VERIFY)
    return browser


class Copy:
    """Another browser holding the session cookie a browser has now, with the CSRF token
    of the second-step page as it read it then (while the sign-in waited)."""

    def __init__(self, site: Site, browser: Browser) -> None:
        name = settings.SESSION_COOKIE_NAME
        self.browser = Browser(site)
        self.browser.client.cookies[name] = browser.client.cookies[name].value
        self.csrf = self.browser.fields(VERIFY)["csrfmiddlewaretoken"]

    def post(self, data: dict[str, str]) -> Any:
        return self.browser.post(VERIFY, {**data, "csrfmiddlewaretoken": self.csrf})


def _who(browser: Browser) -> str:
    return str(browser.get("/home/").content.decode().removeprefix("home of "))


def _refused_as_expired(answer: Any, browser: Browser) -> None:
    assert answer.status_code == 400
    assert EXPIRED in answer.content.decode()
    assert _who(browser) == "nobody"


def test_a_copy_of_the_waiting_session_is_refused_a_new_code(site: Site) -> None:
    secret, _ = _enrolled_bob(site)
    owner = _waiting(site)
    copy = Copy(site, owner)
    done = owner.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
    assert done.status_code == 303
    assert _who(owner) == "bob"
    site.clock.advance(30)
    _refused_as_expired(copy.post({"code": site.totp_code(secret)}), copy.browser)
    assert _who(owner) == "bob"


def test_a_copy_of_the_waiting_session_is_refused_a_recovery_code(site: Site) -> None:
    secret, codes = _enrolled_bob(site)
    owner = _waiting(site)
    copy = Copy(site, owner)
    assert owner.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
    _refused_as_expired(copy.post({"recovery_code": codes[0]}), copy.browser)


def test_a_recovery_code_spends_the_waiting_sign_in_too(site: Site) -> None:
    _, codes = _enrolled_bob(site)
    owner = _waiting(site)
    copy = Copy(site, owner)
    assert owner.form(VERIFY, {"recovery_code": codes[0]}, page=VERIFY).status_code == 303
    _refused_as_expired(copy.post({"recovery_code": codes[1]}), copy.browser)


def test_a_copy_of_a_held_sign_in_is_refused(site: Site) -> None:
    """A sign-in ``login()`` made elsewhere, held for the second factor, completes once."""
    secret, _ = _enrolled_bob(site)
    owner = _waiting(site, url="/login/elsewhere/")
    copy = Copy(site, owner)
    assert owner.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _who(owner) == "bob"
    site.clock.advance(30)
    _refused_as_expired(copy.post({"code": site.totp_code(secret)}), copy.browser)


def test_a_held_sign_in_held_again_still_completes(site: Site) -> None:
    """The same sign-in held again (another ``login()`` of the same user while it waits)
    keeps its record in the store: it finishes, once."""
    secret, _ = _enrolled_bob(site)
    owner = _waiting(site, url="/login/elsewhere/")
    copy = Copy(site, owner)
    again = owner.client.post(
        "/login/elsewhere/", {"username": "bob", "password": "battery staple"}
    )
    assert (again.status_code, again["Location"]) == (303, VERIFY)
    assert owner.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _who(owner) == "bob"
    site.clock.advance(30)
    _refused_as_expired(copy.post({"code": site.totp_code(secret)}), copy.browser)


def test_a_wrong_code_leaves_the_sign_in_waiting(site: Site) -> None:
    secret, _ = _enrolled_bob(site)
    bob = _waiting(site)
    wrong = f"{(int(site.totp_code(secret)) + 1) % 1_000_000:06d}"
    assert bob.form(VERIFY, {"code": wrong}, page=VERIFY).status_code == 400
    assert _who(bob) == "nobody"
    assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _who(bob) == "bob"


def _abandoned_cases() -> list[Any]:
    """A new sign-in in a database session keeps its session key: a copy of that cookie
    is the same live session (it sees the new sign-in), so only the signed cookie's
    copy holds the abandoned one."""
    return [
        pytest.param(SIGNED_COOKIES, "sign-out", id="signed_cookies-sign-out"),
        pytest.param(SIGNED_COOKIES, "a new sign-in", id="signed_cookies-new-sign-in"),
        pytest.param(DATABASE, "sign-out", id="db-sign-out"),
    ]


@pytest.mark.parametrize(("engine", "abandoned_by"), _abandoned_cases())
@pytest.mark.parametrize("url", ["/login/", "/login/elsewhere/"])
def test_an_abandoned_waiting_sign_in_is_refused_to_a_copy(
    site: Site, abandoned_by: str, url: str
) -> None:
    """Signed out, or replaced by a new sign-in (``begin_sign_in``), the waiting sign-in
    is spent in the store too (begun by ``begin_sign_in``, or held from a ``login()``
    elsewhere): a copy of the cookie kept while it waited cannot finish it."""
    secret, _ = _enrolled_bob(site)
    owner = _waiting(site, url=url)
    copy = Copy(site, owner)
    if abandoned_by == "sign-out":
        owner.logout()
    else:
        again = owner.client.post("/login/", {"username": "bob", "password": "battery staple"})
        assert (again.status_code, again["Location"]) == (303, VERIFY)
    _refused_as_expired(copy.post({"code": site.totp_code(secret)}), copy.browser)
    if abandoned_by == "a new sign-in":
        site.clock.advance(30)  # the copy's code was checked (and spent) first
        done = owner.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
        assert done.status_code == 303
        assert _who(owner) == "bob"


def test_an_outage_when_the_sign_in_begins_keeps_nothing(site: Site) -> None:
    _enrolled_bob(site)
    bob = Browser(site)
    site.store.down = True
    answer = bob.login("bob")
    site.store.down = False
    assert answer.status_code == 503  # stepup's "try again" page
    assert bob.get(VERIFY).status_code == 400  # nothing waits
    assert _who(bob) == "nobody"


def test_an_outage_when_a_held_sign_in_begins_signs_nobody_in(site: Site) -> None:
    _enrolled_bob(site)
    bob = Browser(site)
    site.store.down = True
    answer = bob.client.post("/login/elsewhere/", {"username": "bob", "password": "battery staple"})
    site.store.down = False
    assert answer.status_code == 503
    assert bob.get(VERIFY).status_code == 400
    assert _who(bob) == "nobody"


def test_an_outage_when_the_sign_in_completes_signs_nobody_in(site: Site) -> None:
    secret, _ = _enrolled_bob(site)
    bob = _waiting(site)
    site.store.down = True
    answer = bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY)
    site.store.down = False
    assert answer.status_code == 503
    assert "Try again in a moment" in answer.content.decode()
    assert _who(bob) == "nobody"
    site.clock.advance(30)  # still waiting: the next code finishes it
    assert bob.form(VERIFY, {"code": site.totp_code(secret)}, page=VERIFY).status_code == 303
    assert _who(bob) == "bob"


def test_an_outage_at_sign_out_still_signs_out(site: Site) -> None:
    """The waiting sign-in cannot be spent: the sign-out goes on (the record ends at its
    lifetime)."""
    _enrolled_bob(site)
    bob = _waiting(site)
    site.store.down = True
    answer = bob.logout()
    site.store.down = False
    assert answer.status_code < 500
    assert bob.get(VERIFY).status_code == 400
    assert _who(bob) == "nobody"


# the passkey ---------------------------------------------------------------------------


def _json(browser: Browser, url: str, body: Any, csrf: str) -> Any:
    if changes_factors(url):
        confirm_factors(browser)
    return browser.client.post(
        url, data=json.dumps(body), content_type="application/json", headers={"X-CSRFToken": csrf}
    )


def _with_passkey(site: Site) -> SoftAuthenticator:
    """alice adds a passkey (her second factor), then signs out."""
    browser = site.browser("alice")
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    csrf = browser.fields("/stepup/passkeys/")["csrfmiddlewaretoken"]
    options = _json(browser, "/stepup/passkeys/register/begin", {}, csrf)
    assert options.status_code == 200, options.content
    body = {"credential": key.create(options.json())}
    assert _json(browser, "/stepup/passkeys/register/finish", body, csrf).status_code == 200
    browser.logout()
    return key


def _passkey_step(browser: Browser, key: SoftAuthenticator, csrf: str) -> Any:
    """The passkey sign-in: its options, then the signed answer (the first refusal)."""
    options = _json(browser, BEGIN, {}, csrf)
    if options.status_code != 200:
        return options
    return _json(browser, FINISH, {"credential": key.get(options.json())}, csrf)


def test_a_copy_is_refused_a_passkey(engine: str, clock: SettableClock) -> None:
    with _site(engine, clock, **PASSKEYS) as site:
        key = _with_passkey(site)
        owner = _waiting(site, "alice")
        copy = Copy(site, owner)
        owner_csrf = owner.fields(VERIFY)["csrfmiddlewaretoken"]
        done = _passkey_step(owner, key, owner_csrf)
        assert done.status_code == 200, done.content
        replayed = _passkey_step(copy.browser, key, copy.csrf)
        assert replayed.status_code == 400, replayed.content
        assert replayed.json()["error"] == "sign_in_expired"
        assert _who(owner) == "alice"
        assert _who(copy.browser) == "nobody"


def test_a_copy_is_refused_a_passkey_on_the_page(engine: str, clock: SettableClock) -> None:
    """The page's form (no script) is told the sign-in expired too."""
    with _site(engine, clock, **PASSKEYS) as site:
        key = _with_passkey(site)
        owner = _waiting(site, "alice")
        copy = Copy(site, owner)
        owner_csrf = owner.fields(VERIFY)["csrfmiddlewaretoken"]
        assert _passkey_step(owner, key, owner_csrf).status_code == 200
        options = _json(copy.browser, BEGIN, {}, copy.csrf)  # a database session: gone
        answer = key.get(options.json()) if options.status_code == 200 else {}
        credential = json.dumps(answer)
        form = {"credential": credential, "csrfmiddlewaretoken": copy.csrf}
        _refused_as_expired(copy.browser.post(FINISH, form), copy.browser)
