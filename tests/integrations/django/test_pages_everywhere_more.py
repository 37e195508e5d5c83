"""The pages added after the first set read the same in Flask, Django and Starlette too:
the passkeys page, "Use a passkey" on the re-auth page and at sign-in, the two-factor
page with its authenticator apps, adding another app, the confirmation of one
transaction and the page for a level this sign-in cannot reach, in English and German.

Each framework's test app is driven through its own test client with the same policy
(the Django test project's), the same clock and the same passkey settings; a page is
reduced as in ``test_pages_everywhere`` (words, fields, accessibility attributes) and
the three must match. (This module lives under django/ because Django is configured
once per process there.)
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from integrations.django import django_support
from integrations.django.django_support import Site, running_site
from integrations.django.test_pages_everywhere import LANGUAGES, Page, _same, hidden
from integrations.django.testapp.hooks import LEVELS, app_policy
from integrations.flask import flask_support
from integrations.starlette import starlette_support
from stepup.adapters.storage.memory import MemoryStore
from stepup.assurance import Level, Levels
from stepup.integrations.transaction import Transaction
from stepup.policy import Policy, Rule, Sensitivity
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator
from stepup.totp import TOTP

ORIGIN = "http://localhost"
DESTROY = "workspace.destroy"
DESCRIPTION = "Delete workspace %(workspace)s"  # as the Django test project's view says
_KEY = re.compile(r'id="stepup-manual-key">([^<]+)<')
Headers = dict[str, str]


@dataclass
class Framework:
    """One framework's test app, driven as a browser would, with its own URL spelling
    (Django's page URLs end in a slash) and CSRF field."""

    name: str
    clock: SettableClock
    origin: str
    slash: str
    csrf_name: str
    csrf_header: str
    make_client: Callable[[], Any]
    login: Callable[[Any, str], Any]
    enrol_client: Callable[[Any], Any]
    flag_on: Callable[[Any], Any]
    opened: list[Any] = field(default_factory=list)

    def page(self, path: str) -> str:
        """A stepup page's path in this framework (``/stepup/2fa`` -> ``/stepup/2fa/``)."""
        base, _, query = path.partition("?")
        return base + self.slash + (f"?{query}" if query else "")

    def client(self, user: str | None = None) -> Any:
        browser = self.make_client()
        self.opened.append(browser)
        if user is not None:
            assert self.login(browser, user).status_code == 303
        return browser

    def get(self, browser: Any, url: str, headers: Headers | None = None) -> Page:
        r = browser.client.get(url, headers=headers or {})
        return r.status_code, _text(r)

    def csrf(self, browser: Any, page: str) -> str:
        return hidden(self.get(browser, page)[1])[self.csrf_name]

    def post(
        self,
        browser: Any,
        url: str,
        data: dict[str, str],
        page: str,
        headers: Headers | None = None,
    ) -> Page:
        body = {**data, self.csrf_name: self.csrf(browser, page)}
        r = browser.client.post(url, data=body, headers=headers or {})
        return r.status_code, _text(r)

    def json(self, browser: Any, url: str, body: Any, page: str) -> Any:
        headers = {self.csrf_header: self.csrf(browser, page), "Content-Type": "application/json"}
        if self.name == "starlette":  # httpx
            r = browser.client.post(url, content=json.dumps(body), headers=headers)
        else:  # the test clients of Flask and Django
            r = browser.client.post(
                url, data=json.dumps(body), content_type="application/json", headers=headers
            )
        assert r.status_code == 200, (self.name, url, _text(r))
        return json.loads(_text(r))

    def enrol_page(self, browser: Any) -> Page:
        """The enrolment page: a POST in every framework."""
        return self.post(browser, self.page("/stepup/2fa/enrol"), {}, self.page("/stepup/2fa"))

    def confirm(self, browser: Any, code: str) -> Page:
        return self.post(
            browser, self.page("/stepup/2fa/confirm"), {"code": code}, self.page("/stepup/2fa")
        )

    def add_passkey(self, browser: Any, name: str) -> SoftAuthenticator:
        key = SoftAuthenticator(origin=ORIGIN, counter=1)
        passkeys = self.page("/stepup/passkeys")
        support = {"flask": flask_support, "django": django_support}
        # Adding a passkey asks for a re-authentication whatever the flag: test plumbing.
        support.get(self.name, starlette_support).confirm_factors(browser)
        options = self.json(browser, "/stepup/passkeys/register/begin", {}, passkeys)
        body = {"credential": key.create(options), "name": name}
        self.json(browser, "/stepup/passkeys/register/finish", body, passkeys)
        return key

    def close(self) -> None:
        for browser in self.opened:
            if self.name == "starlette":
                browser.close()


def _text(response: Any) -> str:
    if hasattr(response, "get_data"):
        return str(response.get_data(as_text=True))
    if hasattr(response, "text"):
        return str(response.text)
    return str(response.content.decode())


def policy() -> Policy:
    """The Django test project's policy (one transaction-bound action among them) and
    ``money.wire``, whose level only a provider's acr proves."""
    high = Levels((*LEVELS, Level("high", acr=("urn:high",))))
    wire = Rule(Sensitivity.SENSITIVE, level="high", description="Wiring money")
    return app_policy().with_levels(high).extend({"money.wire": wire})


PASSWORDS = {
    "flask": "correct horse",
    "django": django_support.PASSWORDS["alice"],
    "starlette": starlette_support.PASSWORDS["alice"],
}


# The three apps ----------------------------------------------------------------------


def _flask(clock: SettableClock, catalog: Any = None) -> Framework:
    def routes(app: Any, stepup: Any) -> None:
        def target(req: Any) -> Transaction:
            return Transaction({"workspace": req.view_args["name"]}, DESCRIPTION)

        @app.post("/workspaces/<name>/destroy")
        @stepup.reauth_required(DESTROY, transaction=target, return_to="/home/")
        def destroy(name: str) -> str:
            return f"destroyed {name}"

    config = {
        "STEPUP_PASSKEYS_RP_ID": "localhost",
        "STEPUP_PASSKEYS_ORIGINS": [ORIGIN],
        "STEPUP_CATALOG": catalog,
    }
    app = flask_support.make_app(
        "subject_loader",
        clock=clock,
        store=MemoryStore(),
        policy=policy(),
        config=config,
        setup=routes,
    )
    return Framework(
        name="flask",
        clock=clock,
        origin="http://localhost",
        slash="",
        csrf_name="csrf_token",
        csrf_header="X-CSRF-Token",
        make_client=app.client,
        login=lambda browser, user: browser.login(user),
        enrol_client=lambda browser: browser.enrol(),
        flag_on=flask_support.set_flag,
    )


def _django(clock: SettableClock, site: Site) -> Framework:
    return Framework(
        name="django",
        clock=clock,
        origin="http://testserver",
        slash="/",
        csrf_name="csrfmiddlewaretoken",
        csrf_header="X-CSRFToken",
        make_client=lambda: django_support.Browser(site),
        login=lambda browser, user: browser.login(user),
        enrol_client=lambda browser: browser.enrol(),
        flag_on=django_support.set_flag,
    )


def _starlette(clock: SettableClock, catalog: Any = None) -> Framework:
    def routes(stepup: Any) -> list[Any]:
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, Response
        from starlette.routing import Route

        @stepup.requires_reauth(
            DESTROY,
            transaction=lambda r: Transaction({"workspace": r.path_params["name"]}, DESCRIPTION),
        )
        async def destroy(request: Request) -> Response:
            return PlainTextResponse(f"destroyed {request.path_params['name']}")

        return [Route("/workspaces/{name}/destroy", destroy, methods=["POST"])]

    app = starlette_support.make_app(
        clock=clock,
        store=MemoryStore(),
        policy=policy(),
        extra_routes=routes,
        passkeys_rp_id="localhost",
        passkeys_origins=(ORIGIN,),
        catalog=catalog,
    )
    return Framework(
        name="starlette",
        clock=clock,
        origin="http://testserver",
        slash="",
        csrf_name="csrf_token",
        csrf_header="X-CSRF-Token",
        make_client=app.browser,
        login=lambda browser, user: browser.login(user),
        enrol_client=starlette_support.enrol,
        flag_on=lambda browser: browser.patch_tenant(True),
    )


@contextmanager
def _three(clock: SettableClock, catalog: Any = None) -> Iterator[list[Framework]]:
    options = {
        "PASSKEYS_RP_ID": "localhost",
        "PASSKEYS_ORIGINS": [ORIGIN],
        "POLICY": f"{__name__}.policy",
        "CATALOG": catalog,
    }
    with running_site(MemoryStore(), clock, **options) as site:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure("acme")
        made = [_flask(clock, catalog), _django(clock, site), _starlette(clock, catalog)]
        try:
            yield made
        finally:
            for framework in made:
                framework.close()


@pytest.fixture
def frameworks(clock: SettableClock) -> Iterator[list[Framework]]:
    with _three(clock) as made:
        yield made


_RESUME = re.compile(r'(name="resume" value=")[^"]*"')


def _each(frameworks: list[Framework], page: Callable[[Framework], Page]) -> dict[str, Page]:
    """Each framework's page, its one-time resume token (a kept form POST) masked."""
    pages = {f.name: page(f) for f in frameworks}
    return {name: (status, _RESUME.sub(r'\1…"', body)) for name, (status, body) in pages.items()}


# Passkeys ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_passkeys_page_reads_the_same_everywhere(
    frameworks: list[Framework], language: str
) -> None:
    headers = LANGUAGES[language]
    alices = {f.name: f.client("alice") for f in frameworks}

    def passkeys(f: Framework) -> Page:
        return f.get(alices[f.name], f.page("/stepup/passkeys"), headers)

    lang, text, fields = _same(_each(frameworks, passkeys))
    assert lang == language
    assert (
        "Sie haben noch keinen Passkey." if language == "de" else "You have no passkey yet."
    ) in text
    for f in frameworks:
        f.add_passkey(alices[f.name], "Work laptop")
    _, listed, listed_fields = _same(_each(frameworks, passkeys))
    assert "Work laptop" in listed
    name = next(f for f in fields if "name=name" in f)
    assert any(f[0] == "label" for f in fields)
    assert name[0] == "input"
    assert len(listed_fields) > len(fields)  # rename and remove for the one passkey


def test_renaming_a_passkey_is_said_in_the_pages_language(frameworks: list[Framework]) -> None:
    """After renaming a passkey (or naming one that is not there) the passkeys page says
    so once, in German, in every framework (Starlette said nothing)."""
    german = LANGUAGES["de"]
    alices = {f.name: f.client("alice") for f in frameworks}
    for f in frameworks:
        f.add_passkey(alices[f.name], "Laptop")

    def rename(f: Framework, which: str | None) -> Page:
        passkeys = f.page("/stepup/passkeys")
        found = re.search(r'data-passkey-id="([^"]+)"', f.get(alices[f.name], passkeys)[1])
        assert found, f.name
        url = f"/stepup/passkeys/{which or found.group(1)}/rename"
        status, _ = f.post(alices[f.name], url, {"name": "Desk"}, passkeys)
        assert status == 303, (f.name, status)
        return f.get(alices[f.name], passkeys, german)

    _, text, _ = _same(_each(frameworks, lambda f: rename(f, None)))
    assert text.count("Der Passkey wurde umbenannt.") == 1
    _, text, _ = _same(_each(frameworks, lambda f: rename(f, "nope")))
    assert text.count("Diesen Passkey gibt es in Ihrem Konto nicht.") == 1


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_reauth_page_offering_a_passkey_reads_the_same_everywhere(
    frameworks: list[Framework], language: str
) -> None:
    headers = LANGUAGES[language]
    alices = {f.name: f.client("alice") for f in frameworks}
    for f in frameworks:
        f.add_passkey(alices[f.name], "Laptop")

    def prompt(f: Framework) -> Page:
        url = f.page("/stepup/reauth") + "?action=api_key.read&next=/somewhere"
        came_from = {**headers, "Referer": f"{f.origin}/settings?tab=keys"}
        return f.get(alices[f.name], url, came_from)

    pages = _each(frameworks, prompt)
    _, text, fields = _same(pages)
    assert ("Passkey verwenden" if language == "de" else "Use a passkey") in text
    assert ("input", "name=next", "type=hidden", "/somewhere") in fields
    # Cancel goes back where the person came from, here too.
    assert {name: _ways_out(body) for name, (_, body) in pages.items()} == {
        f.name: ["/settings?tab=keys"] for f in frameworks
    }
    assert ("input", "name=cancel", "type=hidden", "/settings?tab=keys") in fields


def test_signing_in_with_a_passkey_reads_the_same_everywhere(
    frameworks: list[Framework],
) -> None:
    for f in frameworks:
        f.add_passkey(f.client("alice"), "Laptop")

    def second_step(f: Framework) -> Page:
        browser = f.client()
        started = f.login(browser, "alice")
        assert started.status_code == 303
        return f.get(browser, started.headers["Location"], LANGUAGES["de"])

    _, text, fields = _same(_each(frameworks, second_step))
    assert "Bestätigen Sie mit Ihrem Passkey, dass Sie es sind" in text
    assert not any("name=code" in f for f in fields)


def _ways_out(page: str) -> list[str]:
    """Where a page's Cancel, Done and "Set it up first" links go, a trailing slash
    (Django's spelling) left off."""
    found = re.findall(r'<a (?:class="stepup-(?:cancel|button)" )?href="([^"]*)">', page)
    return [html.unescape(href).rstrip("/") or "/" for href in found]


def test_the_ways_out_lead_to_the_same_places(frameworks: list[Framework]) -> None:
    """Link targets are not in the page reduction: the enrolment's Cancel, the recovery
    codes' Done and "Set it up first" go to the two-factor page in every framework
    (Starlette's went to ``/`` and to the enrolment, from before it had that page)."""
    bobs = {f.name: f.client("bob") for f in frameworks}
    places: dict[str, list[str]] = {}
    for f in frameworks:
        bob = bobs[f.name]
        status, needs = f.get(bob, f.page("/stepup/reauth") + "?action=billing.export&next=/x")
        assert status == 200, (f.name, status)
        _, enrol = f.enrol_page(bob)
        key = _KEY.search(enrol)
        assert key, f.name
        code = TOTP(key.group(1).replace(" ", "")).at(f.clock())
        _, codes = f.confirm(bob, code)
        places[f.name] = _ways_out(needs) + _ways_out(enrol) + _ways_out(codes)
    assert places["flask"] == ["/stepup/2fa", "/", "/stepup/2fa", "/stepup/2fa"]
    assert places["django"] == places["flask"]
    assert places["starlette"] == places["flask"]


# Authenticator apps --------------------------------------------------------------------


def _enrolled(frameworks: list[Framework]) -> dict[str, Any]:
    """bob, signed in with two-factor authentication on."""
    bobs = {}
    for f in frameworks:
        bob = f.client("bob")
        f.enrol_client(bob)
        bobs[f.name] = bob
    return bobs


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_the_two_factor_page_reads_the_same_everywhere(
    frameworks: list[Framework], language: str
) -> None:
    headers = LANGUAGES[language]
    bobs = {f.name: f.client("bob") for f in frameworks}

    def settings(f: Framework) -> Page:
        return f.get(bobs[f.name], f.page("/stepup/2fa"), headers)

    # Off: the same button turns it on (Starlette's begins the enrolment with a GET).
    _, off, off_fields = _same(_each(frameworks, settings))
    assert ("ausgeschaltet" if language == "de" else "is off") in off
    assert off_fields == (("button", "type=submit"),)
    bobs = _enrolled(frameworks)
    lang, text, fields = _same(_each(frameworks, settings))
    assert lang == language
    assert ("Authenticator-Apps" if language == "de" else "Authenticator apps") in text
    assert ("label", "for=stepup-device-name") in fields  # adding another app names it
    assert ("button", "type=submit") in fields


def test_a_renamed_app_is_flashed_in_the_pages_language(frameworks: list[Framework]) -> None:
    """The note after renaming an app (a flash message) is translated on the next page,
    in every framework."""
    german = LANGUAGES["de"]
    bobs = _enrolled(frameworks)

    def renamed(f: Framework) -> Page:
        settings = f.page("/stepup/2fa")
        found = re.search(r'data-device-id="([^"]+)"', f.get(bobs[f.name], settings)[1])
        assert found, f.name
        url = f.page(f"/stepup/2fa/devices/{found.group(1)}/rename")
        status, _ = f.post(bobs[f.name], url, {"name": "Phone"}, settings)
        assert status == 303, (f.name, status)
        return f.get(bobs[f.name], settings, german)

    _, text, _ = _same(_each(frameworks, renamed))
    assert text.count("Die Authenticator-App wurde umbenannt.") == 1
    assert "Phone" in text


def test_new_recovery_codes_and_removal_read_the_same_everywhere(
    frameworks: list[Framework],
) -> None:
    """From the two-factor page: new recovery codes, then removing two-factor
    authentication, which comes back to the two-factor page saying it is off (Starlette
    sent the person to ``/`` with nothing said)."""
    german = LANGUAGES["de"]
    bobs = _enrolled(frameworks)

    def submit(f: Framework, ending: str) -> Page:
        settings = f.page("/stepup/2fa")
        page = f.get(bobs[f.name], settings)[1]
        forms = re.findall(r'<form method="post" action="([^"]*)"', page)
        action = next(a for a in forms if a.rstrip("/").endswith(ending))
        return f.post(bobs[f.name], action, {}, settings, german)

    _, codes, _ = _same(_each(frameworks, lambda f: submit(f, "/2fa/recovery-codes")))
    assert codes.startswith("Ihre Wiederherstellungscodes")

    def removed(f: Framework) -> Page:
        status, _ = submit(f, "/2fa/remove")
        assert status == 303, (f.name, status)
        return f.get(bobs[f.name], f.page("/stepup/2fa"), german)

    _, text, fields = _same(_each(frameworks, removed))
    assert text.count("Die Zwei-Faktor-Authentifizierung ist ausgeschaltet.") == 2  # note, status
    assert fields == (("button", "type=submit"),)


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_adding_another_app_reads_the_same_everywhere(
    frameworks: list[Framework], language: str
) -> None:
    headers = LANGUAGES[language]
    bobs = _enrolled(frameworks)

    def add(f: Framework) -> Page:
        settings, adding = f.page("/stepup/2fa"), f.page("/stepup/2fa/devices/add")
        status, _ = f.post(bobs[f.name], adding, {"name": "Tablet"}, settings, headers)
        assert status == 303, (f.name, status)  # begun: the page is the GET that follows
        return f.get(bobs[f.name], adding, headers)

    _, text, fields = _same(_each(frameworks, add))
    assert (
        "Authenticator-App hinzufügen" if language == "de" else "Add an authenticator app"
    ) in text
    code = next(f for f in fields if "name=code" in f)
    assert "autocomplete=one-time-code" in code

    def wrong(f: Framework) -> Page:
        settings = f.page("/stepup/2fa")
        return f.post(
            bobs[f.name],
            f.page("/stepup/2fa/devices/confirm"),
            {"code": "000000"},
            settings,
            headers,
        )

    _, _, wrong_fields = _same(_each(frameworks, wrong))
    code = next(f for f in wrong_fields if "name=code" in f)
    assert "aria-describedby=stepup-error" in code

    def paused(f: Framework) -> Page:
        for _ in range(12):
            status, page = wrong(f)
            if status == 429:
                return status, page
        pytest.fail(f"{f.name}: never paused")

    _, text, _ = _same(_each(frameworks, paused))
    assert (
        "Weitere Versuche sind bis" if language == "de" else "trying again is paused until"
    ) in text


# One transaction, and a level out of reach ---------------------------------------------


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_confirming_one_transaction_reads_the_same_everywhere(
    frameworks: list[Framework], language: str
) -> None:
    headers = LANGUAGES[language]
    alices = {f.name: f.client("alice") for f in frameworks}
    prompts: dict[str, str] = {}

    def confirm(f: Framework) -> Page:
        alice = alices[f.name]
        assert f.flag_on(alice).status_code == 200
        csrf = f.csrf(alice, f.page("/stepup/passkeys"))
        refused = alice.client.post(
            "/workspaces/prod-eu/destroy" + f.slash, data={f.csrf_name: csrf, "why": "tidy"}
        )
        assert refused.status_code == 303, (f.name, refused.status_code)
        status, page = f.get(alice, refused.headers["Location"], headers)
        prompts[f.name] = page
        # Where it goes after is the app's (Flask's and Django's return_to, Starlette's
        # own path, which it resumes): the same everywhere but for that.
        return status, re.sub(r'(name="next" value=")[^"]*"', r'\1…"', page)

    _, text, fields = _same(_each(frameworks, confirm))
    assert ("Sie bestätigen:" if language == "de" else "You are confirming:") in text
    assert "Delete workspace prod-eu" in text
    assert any("name=transaction" in f for f in fields)

    def confirmed(f: Framework) -> Page:
        """The right password: the kept form, sent again (``resume.html``)."""
        page = prompts[f.name]
        action = re.search(r'<form method="post" action="([^"]*)"', page)
        assert action, f.name
        data = {**hidden(page), "password": PASSWORDS[f.name]}
        r = alices[f.name].client.post(html.unescape(action.group(1)), data=data, headers=headers)
        return r.status_code, _text(r)

    _, text, fields = _same(_each(frameworks, confirmed))
    assert ("Bestätigt" if language == "de" else "Confirmed") in text
    assert ("input", "name=why", "type=hidden", "tidy") in fields


@pytest.mark.parametrize("language", sorted(LANGUAGES))
def test_a_level_out_of_reach_reads_the_same_everywhere(
    frameworks: list[Framework], language: str
) -> None:
    """``money.wire`` asks for a level only a provider's acr proves: a password session
    cannot reach it."""
    headers = LANGUAGES[language]

    def unreachable(f: Framework) -> Page:
        url = f.page("/stepup/reauth") + "?action=money.wire&next=/somewhere"
        came_from = {**headers, "Referer": f"{f.origin}/payments"}
        return f.get(f.client("alice"), url, came_from)

    pages = _each(frameworks, unreachable)
    _, text, fields = _same(pages)
    # The only way on is out: Cancel, back where the person came from.
    assert {name: _ways_out(body) for name, (_, body) in pages.items()} == {
        f.name: ["/payments"] for f in frameworks
    }
    assert (
        "Diese Aktion erfordert eine stärkere Bestätigung"
        if language == "de"
        else "This action needs a stronger confirmation than this sign-in can give."
    ) in text
    assert not any("name=password" in f for f in fields)


# The app's own texts in the page's language ------------------------------------------


def _app_catalog(root: Path) -> tuple[str, str]:
    """An app's German catalog (domain ``acme``) for its own texts, compiled as
    ``pybabel compile`` would."""
    from babel.messages.catalog import Catalog
    from babel.messages.mofile import write_mo

    catalog = Catalog(locale="de", domain="acme")
    catalog.add("Wiring money", "Geld überweisen")
    catalog.add("Deleting a workspace", "Einen Arbeitsbereich löschen")
    catalog.add(DESCRIPTION, "Arbeitsbereich %(workspace)s löschen")
    folder = root / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "acme.mo").open("wb") as f:
        write_mo(f, catalog)
    return ("acme", str(root))


def test_the_apps_own_texts_come_from_its_catalog(clock: SettableClock, tmp_path: Path) -> None:
    """An action description or a transaction's description of the app's own is shown
    in the page's language from the app's catalog (``STEPUP_CATALOG``,
    ``STEPUP["CATALOG"]``, ``Stepup(catalog=...)``), not in English inside a German
    sentence; without the catalog it stays as written."""
    catalog = _app_catalog(tmp_path / "locale")
    german = LANGUAGES["de"]
    with _three(clock, catalog) as frameworks:

        def wire(f: Framework, headers: Headers = german) -> Page:
            url = f.page("/stepup/reauth") + "?action=money.wire&next=/x"
            return f.get(f.client("alice"), url, headers)

        _, text, _ = _same(_each(frameworks, wire))
        assert "Geld überweisen ist eine sensible Aktion." in text
        # English pages keep the app's English text.
        _, text, _ = _same(_each(frameworks, lambda f: wire(f, {})))
        assert "Wiring money is a sensitive action." in text

        def confirm(f: Framework) -> Page:
            alice = f.client("alice")
            assert f.flag_on(alice).status_code == 200
            csrf = f.csrf(alice, f.page("/stepup/passkeys"))
            refused = alice.client.post(
                "/workspaces/prod-eu/destroy" + f.slash, data={f.csrf_name: csrf}
            )
            status, page = f.get(alice, refused.headers["Location"], german)
            return status, re.sub(r'(name="next" value=")[^"]*"', r'\1…"', page)

        _, text, _ = _same(_each(frameworks, confirm))
        assert "Einen Arbeitsbereich löschen ist eine sensible Aktion." in text
        assert "Sie bestätigen: Arbeitsbereich prod-eu löschen" in text
    with _three(clock) as frameworks:
        _, text, _ = _same(_each(frameworks, wire))
        assert "Wiring money ist eine sensible Aktion." in text


@pytest.mark.parametrize(
    "value", [("acme",), ("", "locale"), "acme", ("acme", "/no/such/folder"), 3]
)
def test_a_catalog_setting_that_is_not_one_stops_start_up(value: Any) -> None:
    from stepup.errors import ConfigurationError
    from stepup.i18n import AppCatalog

    with pytest.raises(ConfigurationError, match="CATALOG"):
        AppCatalog.of(value, "STEPUP_CATALOG")
