"""One set of pages: the same words, fields and behaviour in Flask, Django and Starlette.

Each framework's test app is driven through its own test client. A page is reduced to
what a person reads and what a form sends (text with whitespace normalised; every
field's name, type and accessibility attributes), and the three must match, in English
and in German: a template or view that drifts in one framework fails here. The same
drivers check, in every framework, that Cancel never leads back to the prompt, that a
paused re-authentication says until when, and that a wrong enrolment code keeps the
QR code and key that may already be on the phone.
(This module lives under django/ because Django is configured once per process there.)
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Protocol

import pytest

from integrations.django.django_support import Site
from integrations.flask import flask_support
from integrations.starlette import starlette_support
from stepup import TOTP
from stepup.adapters.storage.memory import MemoryStore
from stepup.i18n import format_time
from stepup.testing import SettableClock

Page = tuple[int, str]
Headers = dict[str, str]
_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')
_KEY = re.compile(r'id="stepup-manual-key">([^<]+)<')
_CSRF_FIELDS = frozenset({"csrf_token", "csrfmiddlewaretoken"})
_FIELD_ATTRS = (
    "name",
    "type",
    "id",
    "autocomplete",
    "inputmode",
    "required",
    "autofocus",
    "aria-describedby",
    "aria-invalid",
)
NEXT = "/somewhere"


class _Reader(HTMLParser):
    """What a person reads and what the forms send, without the per-request values
    (CSRF tokens, the secret key, the QR code, recovery codes, link targets)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.fields: list[tuple[str, ...]] = []
        self.lang = ""
        self._skipping: list[str] = []  # the open tags whose content is left out

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang") or ""
        if a.get("role") == "img":  # an image's name is what a screen reader says
            self.text.append(f"[{a.get('aria-label') or ''}]")
        if self._skipping:
            if tag == self._skipping[0]:
                self._skipping.append(tag)
        elif tag in {"svg", "style", "script"} or a.get("id") in {
            "stepup-manual-key",
            "stepup-recovery-codes",
        }:
            self._skipping.append(tag)
        if tag in {"input", "button", "label", "textarea", "select"}:
            if a.get("name") in _CSRF_FIELDS:
                return
            described = tuple(f"{k}={a.get(k)!s}" for k in _FIELD_ATTRS if k in a)
            value = (a.get("value") or "",) if a.get("type") == "hidden" else ()
            target = (f"for={a['for']}",) if "for" in a else ()
            self.fields.append((tag, *described, *value, *target))

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and tag == self._skipping[0]:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.text.append(data)


def read(page: str) -> tuple[str, str, tuple[tuple[str, ...], ...]]:
    """``(lang, text, fields)`` of a page."""
    reader = _Reader()
    reader.feed(page)
    return reader.lang, " ".join(" ".join(reader.text).split()), tuple(reader.fields)


def hidden(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


def cancel_of(page: str) -> str:
    found = re.search(r'<a class="stepup-cancel" href="([^"]*)"', page)
    assert found, "no Cancel link"
    return html.unescape(found.group(1))


class Driver(Protocol):
    name: str
    origin: str
    clock: SettableClock

    def reauth_url(self, action: str, next_path: str) -> str: ...
    def get(self, url: str, headers: Headers | None = None) -> Page: ...
    def submit_password(self, url: str, password: str, headers: Headers | None = None) -> Page: ...
    def enrol_page(self, headers: Headers | None = None) -> Page: ...
    def confirm(self, code: str, headers: Headers | None = None) -> Page: ...
    def verify_page(self, headers: Headers | None = None) -> Page: ...


@dataclass
class FlaskDriver:
    clock: SettableClock
    name: str = "flask"
    origin: str = "http://localhost"
    app: Any = field(init=False)
    bob: Any = field(init=False)

    def __post_init__(self) -> None:
        self.app = flask_support.make_app("subject_loader", clock=self.clock, store=MemoryStore())
        self.bob = self.app.client()
        assert self.bob.login("bob").status_code == 303

    def reauth_url(self, action: str, next_path: str) -> str:
        return f"/stepup/reauth?action={action}&next={next_path}"

    def get(self, url: str, headers: Headers | None = None) -> Page:
        r = self.bob.client.get(url, headers=headers or {})
        return r.status_code, r.get_data(as_text=True)

    def submit_password(self, url: str, password: str, headers: Headers | None = None) -> Page:
        fields = hidden(self.get(url, headers)[1])
        data = {**fields, "password": password}
        r = self.bob.client.post("/stepup/reauth/password", data=data, headers=headers or {})
        return r.status_code, r.get_data(as_text=True)

    def enrol_page(self, headers: Headers | None = None) -> Page:
        r = self.bob.form("/stepup/2fa/enrol", {}, headers=headers or {})
        return r.status_code, r.get_data(as_text=True)

    def confirm(self, code: str, headers: Headers | None = None) -> Page:
        r = self.bob.form("/stepup/2fa/confirm", {"code": code}, headers=headers or {})
        return r.status_code, r.get_data(as_text=True)

    def verify_page(self, headers: Headers | None = None) -> Page:
        self.bob.enrol()
        other = self.app.client()
        started = other.login("bob")
        r = other.client.get(started.headers["Location"], headers=headers or {})
        return r.status_code, r.get_data(as_text=True)


@dataclass
class DjangoDriver:
    clock: SettableClock
    site: Site
    name: str = "django"
    origin: str = "http://testserver"
    bob: Any = field(init=False)

    def __post_init__(self) -> None:
        self.bob = self.site.browser("bob")

    def reauth_url(self, action: str, next_path: str) -> str:
        return f"/stepup/reauth/?action={action}&next={next_path}"

    def get(self, url: str, headers: Headers | None = None) -> Page:
        r = self.bob.client.get(url, headers=headers or {})
        return r.status_code, r.content.decode()

    def submit_password(self, url: str, password: str, headers: Headers | None = None) -> Page:
        fields = hidden(self.get(url, headers)[1])
        data = {**fields, "password": password}
        r = self.bob.client.post("/stepup/reauth/password/", data, headers=headers or {})
        return r.status_code, r.content.decode()

    def enrol_page(self, headers: Headers | None = None) -> Page:
        r = self.bob.form("/stepup/2fa/enrol/", {}, headers=headers or {})
        return r.status_code, r.content.decode()

    def confirm(self, code: str, headers: Headers | None = None) -> Page:
        r = self.bob.form("/stepup/2fa/confirm/", {"code": code}, headers=headers or {})
        return r.status_code, r.content.decode()

    def verify_page(self, headers: Headers | None = None) -> Page:
        self.bob.enrol()
        other = self.site.browser()
        started = other.login("bob")
        r = other.client.get(started["Location"], headers=headers or {})
        return r.status_code, r.content.decode()


@dataclass
class StarletteDriver:
    clock: SettableClock
    name: str = "starlette"
    origin: str = "http://testserver"
    app: Any = field(init=False)
    bob: Any = field(init=False)
    opened: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.app = starlette_support.make_app(clock=self.clock, store=MemoryStore())
        self.bob = self.browser()
        assert self.bob.login("bob").status_code == 303

    def browser(self) -> Any:
        browser = self.app.browser()
        self.opened.append(browser)
        return browser

    def close(self) -> None:
        for browser in self.opened:
            browser.close()

    def reauth_url(self, action: str, next_path: str) -> str:
        return f"/stepup/reauth?action={action}&next={next_path}"

    def get(self, url: str, headers: Headers | None = None) -> Page:
        r = self.bob.client.get(url, headers=headers or {})
        return r.status_code, r.text

    def submit_password(self, url: str, password: str, headers: Headers | None = None) -> Page:
        page = self.get(url, headers)[1]
        data = {**hidden(page), "password": password}
        r = self.bob.client.post(url, data=data, headers=headers or {})
        return r.status_code, r.text

    def enrol_page(self, headers: Headers | None = None) -> Page:
        data = hidden(self.get("/stepup/2fa", headers)[1])
        r = self.bob.client.post("/stepup/2fa/enrol", data=data, headers=headers or {})
        return r.status_code, r.text

    def confirm(self, code: str, headers: Headers | None = None) -> Page:
        data = {**hidden(self.get("/stepup/2fa", headers)[1]), "code": code}
        r = self.bob.client.post("/stepup/2fa/confirm", data=data, headers=headers or {})
        return r.status_code, r.text

    def verify_page(self, headers: Headers | None = None) -> Page:
        starlette_support.enrol(self.bob)
        other = self.browser()
        started = other.login("bob")
        r = other.client.get(started.headers["location"], headers=headers or {})
        return r.status_code, r.text


@pytest.fixture
def drivers(site: Site, clock: SettableClock) -> Iterator[list[Driver]]:
    starlette = StarletteDriver(clock)
    yield [FlaskDriver(clock), DjangoDriver(clock, site), starlette]
    starlette.close()


FRAMEWORKS = ("flask", "django", "starlette")


@pytest.fixture(params=FRAMEWORKS)
def driver(request: pytest.FixtureRequest, drivers: list[Driver]) -> Driver:
    return next(d for d in drivers if d.name == request.param)


def _same(pages: dict[str, Page]) -> tuple[str, str, tuple[tuple[str, ...], ...]]:
    """The pages read the same (status, words, fields) in every framework."""
    statuses = {name: status for name, (status, _) in pages.items()}
    assert len(set(statuses.values())) == 1, statuses
    seen = {name: read(body) for name, (_, body) in pages.items()}
    first = seen["flask"]
    for name, summary in seen.items():
        assert summary[0] == first[0], (name, "lang")
        assert summary[1] == first[1], (name, summary[1], first[1])
        assert summary[2] == first[2], (name, summary[2], first[2])
    return first


LANGUAGES = {"en": {}, "de": {"Accept-Language": "de-CH, de;q=0.9, en;q=0.5"}}


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_reauth_page_reads_the_same_everywhere(drivers: list[Driver], language: str) -> None:
    headers = LANGUAGES[language]
    pages = {d.name: d.get(d.reauth_url("api_key.read", NEXT), headers) for d in drivers}
    lang, text, fields = _same(pages)
    assert lang == language
    if language == "de":
        assert "API-Schlüssel von Benutzern lesen ist eine sensible Aktion." in text
        assert "Abbrechen" in text
    else:
        assert "Reading user API keys is a sensitive action." in text
    password = next(f for f in fields if "name=password" in f)
    assert "autocomplete=current-password" in password
    assert "autofocus=None" in password
    assert ("label", "for=stepup-password") in fields
    assert ("input", "name=next", "type=hidden", NEXT) in fields
    assert USERNAME_FIELD in fields  # for password managers: which account


#: The read-only account name beside the password, for password managers.
USERNAME_FIELD = (
    "input",
    "name=username",
    "type=text",
    "id=stepup-username",
    "autocomplete=username",
)


def test_the_password_form_names_the_account_for_password_managers(driver: Driver) -> None:
    """Chromium's password forms guidance: a password field with no username field
    leaves a password manager guessing which saved account it is for."""
    url = driver.reauth_url("api_key.read", NEXT)
    for _, page in (driver.get(url), driver.submit_password(url, "wrong")):
        field = re.search(r'<input id="stepup-username"[^>]*>', page)
        assert field, driver.name
        assert 'value="bob"' in field.group(0)  # the user id, Django's username
        assert re.search(r"\sreadonly\s", field.group(0))
        assert re.search(r"\shidden>", field.group(0))
        form = re.search(r'<form method="post"[^>]*>.*?</form>', page, re.S)
        assert form
        assert field.group(0) in form.group(0)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_a_wrong_password_reads_the_same_everywhere(drivers: list[Driver], language: str) -> None:
    headers = LANGUAGES[language]
    pages = {
        d.name: d.submit_password(d.reauth_url("api_key.read", NEXT), "wrong", headers)
        for d in drivers
    }
    _, text, fields = _same(pages)
    failed = {
        "de": "Dieses Passwort ist nicht richtig. Prüfen Sie es und versuchen Sie es erneut.",
    }.get(language, "That password is not right. Check it and try again.")
    assert failed in text
    password = next(f for f in fields if "name=password" in f)
    assert "aria-describedby=stepup-error" in password  # the error names the field
    assert "aria-invalid=true" in password
    assert USERNAME_FIELD in fields


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_enrolment_page_reads_the_same_everywhere(drivers: list[Driver], language: str) -> None:
    headers = LANGUAGES[language]
    _, text, fields = _same({d.name: d.enrol_page(headers) for d in drivers})
    code = next(f for f in fields if "name=code" in f)
    for attribute in ("autocomplete=one-time-code", "inputmode=numeric", "autofocus=None"):
        assert attribute in code
    if language == "de":
        assert "Scannen Sie diesen Code mit Ihrer Authenticator-App:" in text
        assert "[QR-Code mit dem Schlüssel darunter, für Ihre Authenticator-App]" in text
    else:  # the QR code has a name, not only pixels
        assert "[QR code with the key below, for your authenticator app]" in text
    wrong = _same({d.name: d.confirm("000000", headers) for d in drivers})
    assert "aria-describedby=stepup-error" in next(f for f in wrong[2] if "name=code" in f)


def test_the_sign_in_code_page_reads_the_same_everywhere(drivers: list[Driver]) -> None:
    _, text, fields = _same({d.name: d.verify_page(LANGUAGES["de"]) for d in drivers})
    assert "Geben Sie Ihren Bestätigungscode ein" in text
    assert any("name=recovery_code" in f for f in fields)
    assert any("name=code" in f and "autocomplete=one-time-code" in f for f in fields)


def test_the_recovery_codes_page_reads_the_same_everywhere(drivers: list[Driver]) -> None:
    pages: dict[str, Page] = {}
    for d in drivers:
        _, page = d.enrol_page()
        key = _KEY.search(page)
        assert key
        pages[d.name] = d.confirm(
            TOTP(key.group(1).replace(" ", "")).at(d.clock()), LANGUAGES["de"]
        )
    _, text, _ = _same(pages)
    assert text.startswith("Ihre Wiederherstellungscodes")
    for _, page in pages.values():
        assert len(re.findall(r"<li><code>[a-z2-7-]+</code></li>", page)) == 10


def test_flash_messages_are_translated(drivers: list[Driver]) -> None:
    """Turning 2FA on while it is on goes back to the two-factor page, which says so
    once, in the request's language, in every framework (Starlette answered a bare 409
    message page)."""
    german = LANGUAGES["de"]
    flask, django, starlette = drivers
    assert isinstance(flask, FlaskDriver)
    assert isinstance(django, DjangoDriver)
    assert isinstance(starlette, StarletteDriver)
    flask.bob.enrol()
    django.bob.enrol()
    starlette_support.enrol(starlette.bob)
    assert flask.bob.form("/stepup/2fa/enrol", {}).status_code == 303
    assert django.bob.form("/stepup/2fa/enrol/", {}).status_code == 303
    assert starlette.enrol_page()[0] == 303
    pages = {
        "flask": flask.get("/stepup/2fa", german),
        "django": django.get("/stepup/2fa/", german),
        "starlette": starlette.get("/stepup/2fa", german),
    }
    _, text, _ = _same(pages)
    assert text.count("Die Zwei-Faktor-Authentifizierung ist bereits eingeschaltet.") == 1


def test_a_message_page_reads_the_same_everywhere(drivers: list[Driver]) -> None:
    pages = {d.name: d.get(d.reauth_url("no.such.action", "/")) for d in drivers}
    _, text, _ = _same(pages)
    assert "This page was called for an unknown action." in text


def test_every_framework_serves_the_stylesheet(drivers: list[Driver]) -> None:
    for d in drivers:
        _status, page = d.get(d.reauth_url("api_key.read", NEXT))
        href = re.search(r'<link rel="stylesheet" href="([^"]+)"', page)
        assert href, d.name
        css_status, css = d.get(href.group(1))
        assert (css_status, ".stepup-card" in css) == (200, True), d.name


# Cancel must cancel --------------------------------------------------------------------


def test_cancel_goes_back_where_the_person_came_from(driver: Driver) -> None:
    came_from = {"Referer": f"{driver.origin}/settings?tab=keys"}
    _, page = driver.get(driver.reauth_url("api_key.read", NEXT), came_from)
    assert cancel_of(page) == "/settings?tab=keys"


@pytest.mark.parametrize(
    "referer",
    [
        f"http://localhost{NEXT}",  # the guarded page itself: straight back to the prompt
        "https://evil.example/settings",  # another site
        "",  # none sent
        "http://localhost//evil.example/x",  # a path that leaves the site
        "http://localhost[",  # malformed: must not break the page
    ],
)
def test_cancel_never_leads_back_to_the_prompt_or_off_site(driver: Driver, referer: str) -> None:
    referer = referer.replace("http://localhost", driver.origin)
    headers = {"Referer": referer} if referer else {}
    _, page = driver.get(driver.reauth_url("api_key.read", NEXT), headers)
    assert cancel_of(page) == "/"


def test_cancel_survives_a_wrong_password(driver: Driver) -> None:
    """The page shown again after a wrong password still cancels to where the person
    came from (its own Referer is the re-auth page)."""
    url = driver.reauth_url("api_key.read", NEXT)
    came_from = {"Referer": f"{driver.origin}/settings"}
    _, first = driver.get(url, came_from)
    assert cancel_of(first) == "/settings"
    # The browser posts the form with the re-auth page as its Referer.
    again_headers = {"Referer": f"{driver.origin}{url}"}
    fields = hidden(first)
    assert fields["cancel"] == "/settings"
    _, again = _post_with(driver, url, fields, again_headers)
    assert cancel_of(again) == "/settings"


def _post_with(driver: Driver, url: str, fields: dict[str, str], headers: Headers) -> Page:
    if isinstance(driver, FlaskDriver):
        r = driver.bob.client.post(
            "/stepup/reauth/password", data={**fields, "password": "wrong"}, headers=headers
        )
        return r.status_code, r.get_data(as_text=True)
    if isinstance(driver, DjangoDriver):
        r = driver.bob.client.post(
            "/stepup/reauth/password/", {**fields, "password": "wrong"}, headers=headers
        )
        return r.status_code, r.content.decode()
    assert isinstance(driver, StarletteDriver)
    r = driver.bob.client.post(url, data={**fields, "password": "wrong"}, headers=headers)
    return r.status_code, r.text


def test_an_app_can_name_the_cancel_place(clock: SettableClock, site: Site) -> None:
    from django.test import override_settings

    from stepup.integrations.django.services import get_stepup

    flask_app = flask_support.make_app(
        clock=clock, store=MemoryStore(), config={"STEPUP_CANCEL_URL": "/account"}
    )
    flask_bob = flask_app.client()
    flask_bob.login("bob")
    page = flask_bob.client.get(f"/stepup/reauth?action=api_key.read&next={NEXT}")
    assert cancel_of(page.get_data(as_text=True)) == "/account"

    starlette_app = starlette_support.make_app(
        clock=clock, store=MemoryStore(), cancel_url="/account"
    )
    browser = starlette_app.browser()
    try:
        browser.login("bob")
        page = browser.get(f"/stepup/reauth?action=api_key.read&next={NEXT}")
        assert cancel_of(page.text) == "/account"
    finally:
        browser.close()

    from django.conf import settings

    with override_settings(STEPUP={**settings.STEPUP, "CANCEL_URL": "/account/"}):
        assert get_stepup().cancel_url == "/account/"
        bob = site.browser("bob")
        page = bob.get(f"/stepup/reauth/?action=api_key.read&next={NEXT}")
        assert cancel_of(page.content.decode()) == "/account/"


# Say why ---------------------------------------------------------------------------------


def _throttle(driver: Driver, url: str) -> None:
    for _ in range(12):
        status, _ = driver.submit_password(url, "wrong guess")
        if status == 429:
            return
    pytest.fail(f"{driver.name}: never throttled")


def test_a_paused_reauth_says_so_and_until_when(driver: Driver) -> None:
    url = driver.reauth_url("api_key.read", NEXT)
    _throttle(driver, url)
    password = {
        "flask": "battery staple",
        "django": "battery staple",
        "starlette": starlette_support.PASSWORDS["bob"],
    }[driver.name]
    status, page = driver.submit_password(url, password)
    assert status == 429
    text = read(page)[1]
    # The defect: the right password "failed".
    assert "That password is not right. Check it and try again." not in text
    match = re.search(r"trying again is paused until (.+? UTC)\.", text)
    assert match, text
    # The time is a real one, in the future, formatted for the locale.
    now = driver.clock()
    later = [" ".join(format_time(now + s, "en").split()) for s in range(1, 3601)]
    assert match.group(1) in later
    status, german = driver.submit_password(url, password, {"Accept-Language": "de"})
    assert "Weitere Versuche sind bis" in read(german)[1]


def test_a_paused_code_says_until_when(driver: Driver) -> None:
    status, page = driver.verify_page()
    assert status == 200
    for _ in range(12):
        status, page = _post_code(driver, "000000")
        if status == 429:
            break
    assert status == 429
    assert "trying again is paused until" in read(page)[1]


def _post_code(driver: Driver, code: str) -> Page:
    """Post a code on the sign-in code page the driver's last browser is on."""
    if isinstance(driver, FlaskDriver):
        other = driver.app.client()
        # A fresh sign-in each time would reset nothing: the throttle is the user's.
        other.login("bob")
        r = other.client.post(
            "/stepup/2fa/verify",
            data={"code": code, "csrf_token": other.csrf("/stepup/2fa/verify")},
        )
        return r.status_code, r.get_data(as_text=True)
    if isinstance(driver, DjangoDriver):
        other = driver.site.browser()
        other.login("bob")
        r = other.form("/stepup/2fa/verify/", {"code": code}, page="/stepup/2fa/verify/")
        return r.status_code, r.content.decode()
    assert isinstance(driver, StarletteDriver)
    other = driver.browser()
    other.login("bob")
    r = other.form("/stepup/2fa/verify", {"code": code})
    return r.status_code, r.text


# Enrolment keeps its secret ----------------------------------------------------------


def test_a_wrong_enrolment_code_keeps_the_qr_code_and_key(driver: Driver) -> None:
    status, first = driver.enrol_page()
    assert status == 200
    key = _KEY.search(first)
    assert key, first
    status, wrong = driver.confirm("000000")
    assert status == 400
    again = _KEY.search(wrong)
    assert again, "the key is gone after a wrong code"
    assert again.group(1) == key.group(1)
    assert "<svg" in wrong
    assert "That code is not right." in wrong
    # Opening the page again (a reload, "start again") shows the same secret too.
    _, reopened = driver.enrol_page()
    reopened_key = _KEY.search(reopened)
    assert reopened_key
    assert reopened_key.group(1) == key.group(1)
    # And the code from the app that scanned it turns 2FA on.
    code = TOTP(key.group(1).replace(" ", "")).at(driver.clock())
    status, done = driver.confirm(code)
    assert status == 200
    assert "Your recovery codes" in done


def test_an_abandoned_enrolment_gets_a_new_secret(driver: Driver) -> None:
    _, first = driver.enrol_page()
    key = _KEY.search(first)
    assert key
    driver.clock.advance(601)  # pending longer than ENROLMENT_TTL: abandoned
    _, later = driver.enrol_page()
    renewed = _KEY.search(later)
    assert renewed
    assert renewed.group(1) != key.group(1)


# Languages: the app's own choice, and Django's tooling ------------------------------------


def test_the_apps_locale_hook_comes_before_accept_language(
    clock: SettableClock, site: Site
) -> None:
    from django.conf import settings
    from django.test import override_settings

    english = {"Accept-Language": "en"}
    url = f"/stepup/reauth?action=api_key.read&next={NEXT}"

    flask_app = flask_support.make_app(clock=clock, store=MemoryStore())
    flask_app.stepup.locale_selector(lambda: "de_AT")
    flask_bob = flask_app.client()
    flask_bob.login("bob")
    flask_page = flask_bob.client.get(url, headers=english).get_data(as_text=True)

    starlette_app = starlette_support.make_app(
        clock=clock, store=MemoryStore(), locale_selector=lambda request: "de"
    )
    browser = starlette_app.browser()
    try:
        browser.login("bob")
        starlette_page = browser.get(url, headers=english).text
    finally:
        browser.close()

    hook = "integrations.django.test_pages_everywhere.german"
    with override_settings(STEPUP={**settings.STEPUP, "LOCALE_SELECTOR": hook}):
        bob = site.browser("bob")
        django_page = bob.get(url.replace("reauth?", "reauth/?"), headers=english)
        django_text = django_page.content.decode()

    for page in (flask_page, starlette_page, django_text):
        lang, text, _ = read(page)
        assert lang == "de"
        assert "Bestätigen Sie, dass Sie es sind" in text

    # A locale stepup has no catalog for falls back to Accept-Language, then English.
    flask_app.stepup.locale_selector(lambda: "fr")
    page = flask_bob.client.get(url, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert read(page)[0] == "de"
    page = flask_bob.client.get(url).get_data(as_text=True)
    assert read(page)[0] == "en"


def german(request: Any) -> str:
    """A Django ``LOCALE_SELECTOR`` (by dotted path) for the test above."""
    return "de"


def test_djangos_compilemessages_reads_the_catalog(tmp_path: Any, monkeypatch: Any) -> None:
    """The catalogs are plain gettext files: Django's own tooling compiles them."""
    import gettext
    import shutil

    from django.core.management import call_command
    from django.test import override_settings

    from stepup.i18n import DOMAIN, LOCALE_DIR
    from support import need

    need(shutil.which("msgfmt") is not None, "msgfmt is not installed (apt-get install gettext)")
    locale = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR / "de", locale / "de")
    (locale / "de" / "LC_MESSAGES" / f"{DOMAIN}.mo").unlink()
    monkeypatch.chdir(tmp_path)
    with override_settings(LOCALE_PATHS=[str(locale)]):
        call_command("compilemessages", locale=["de"], verbosity=0)
    compiled = gettext.translation(DOMAIN, str(locale), ["de"])
    assert compiled.gettext("Confirm it is you") == "Bestätigen Sie, dass Sie es sind"


def test_a_django_template_override_is_reported_at_start_up(site: Site, tmp_path: Any) -> None:
    """An override still written in the Django template language would fail on its
    first request: the system check names it instead (stepup.E011)."""
    from django.conf import settings
    from django.test import override_settings

    from stepup.integrations.django.checks import check_settings

    (tmp_path / "stepup").mkdir()
    (tmp_path / "stepup" / "reauth.html").write_text(
        '{% extends "stepup/base.html" %}{% block content %}'
        "<form>{% csrf_token %}</form>{% endblock %}"
    )
    (tmp_path / "stepup" / "base.html").write_text(
        "<html><body>{% block content %}{% endblock %}</body></html>"
    )
    templates = [{**settings.TEMPLATES[0], "DIRS": [str(tmp_path)]}]
    with override_settings(TEMPLATES=templates):
        found = [m for m in check_settings() if m.id == "stepup.E011"]
    assert len(found) == 1
    assert "reauth.html" in found[0].msg
    assert "csrf_token" in found[0].msg
