"""Passkeys need stepup-passkeys.js: without it a passkey form could only send an empty
answer. Every passkey form (adding one, re-authenticating, the second factor at sign-in)
says so in a ``<noscript>`` and renders its button disabled until the script wires it;
an empty answer that arrives anyway is refused with a message that names the cause, not
"Try again". (The script's side, enabling the button, is in tests/e2e.)"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from markupsafe import Markup

from integrations.flask import flask_support
from integrations.starlette import starlette_support
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.pages import environment, page_context
from stepup.integrations.views import VerifyPage
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
NOTE = "Passkeys need JavaScript in this browser."
CAUSE = "passkeys need JavaScript and a browser that supports them."
REAUTH = "/stepup/reauth?action=api_key.read&next=/somewhere"
_HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"')


def passkey_form(page: str, kind: str) -> str:
    """The page's passkey form of ``kind`` (``register``, ``authenticate``), checked: a
    note for a browser without JavaScript, and every submit button disabled."""
    found = re.search(rf'<form [^>]*data-stepup-passkey="{kind}".*?</form>', page, re.S)
    assert found is not None, f"no {kind} form"
    form = found.group(0)
    assert f'<noscript><p class="stepup-status">{NOTE}</p></noscript>' in form
    buttons = re.findall(r"<button [^>]*>", form)
    assert buttons
    assert all(re.search(r"\sdisabled[\s>]", button) for button in buttons), buttons
    return form


def action_of(form: str) -> str:
    found = re.search(r'<form method="post" action="([^"]+)"', form)
    assert found is not None
    return found.group(1).replace("&amp;", "&")


def refused_for_its_cause(status: int, page: str) -> None:
    assert status == 400
    error = re.search(r'id="stepup-error">([^<]*)<', page)
    assert error is not None
    assert error.group(1).endswith(CAUSE)
    assert "Try again" not in error.group(1)


# Flask ------------------------------------------------------------------------------


def _flask() -> Any:
    config = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}
    app = flask_support.make_app(
        "subject_loader", clock=SettableClock(), store=MemoryStore(), config=config
    )
    alice = app.client()
    assert alice.login("alice").status_code == 303
    return alice


def _flask_add_passkey(alice: Any) -> None:
    flask_support.confirm_factors(alice)
    headers = {"X-CSRF-Token": alice.csrf("/stepup/passkeys")}
    sent = {"content_type": "application/json", "headers": headers}
    options = alice.post("/stepup/passkeys/register/begin", data="{}", **sent).get_json()
    body = {"credential": SoftAuthenticator(origin=ORIGIN).create(options), "name": "Laptop"}
    finish = alice.post("/stepup/passkeys/register/finish", data=json.dumps(body), **sent)
    assert finish.status_code == 200, finish.get_data(as_text=True)


def test_flask_adding_a_passkey_without_javascript() -> None:
    alice = _flask()
    flask_support.confirm_factors(alice)
    form = passkey_form(alice.get("/stepup/passkeys").get_data(as_text=True), "register")
    data = {**dict(_HIDDEN.findall(form)), "name": "Laptop"}  # credential: empty
    answer = alice.post(action_of(form), data=data)
    refused_for_its_cause(answer.status_code, answer.get_data(as_text=True))
    assert 'class="stepup-passkey"' not in answer.get_data(as_text=True)  # none added


def test_flask_reauthenticating_with_a_passkey_without_javascript() -> None:
    alice = _flask()
    _flask_add_passkey(alice)
    form = passkey_form(alice.get(REAUTH).get_data(as_text=True), "authenticate")
    answer = alice.post(action_of(form), data=dict(_HIDDEN.findall(form)))
    refused_for_its_cause(answer.status_code, answer.get_data(as_text=True))


# Starlette --------------------------------------------------------------------------


@pytest.fixture
def starlette_alice() -> Any:
    app = starlette_support.make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        passkeys_rp_id="localhost",
        passkeys_origins=(ORIGIN,),
    )
    alice = app.browser()
    assert alice.login("alice").status_code == 303
    yield alice
    alice.close()


def test_starlette_adding_and_using_a_passkey_without_javascript(starlette_alice: Any) -> None:
    alice = starlette_alice
    starlette_support.confirm_factors(alice)
    form = passkey_form(alice.get("/stepup/passkeys").text, "register")
    answer = alice.client.post(action_of(form), data={**dict(_HIDDEN.findall(form)), "name": "A"})
    refused_for_its_cause(answer.status_code, answer.text)

    token = starlette_support.csrf_token(alice.get("/stepup/passkeys").text)
    sent = {"Content-Type": "application/json", "X-CSRF-Token": token}
    begin = alice.client.post("/stepup/passkeys/register/begin", content="{}", headers=sent)
    body = {"credential": SoftAuthenticator(origin=ORIGIN).create(begin.json()), "name": "A"}
    added = alice.client.post(
        "/stepup/passkeys/register/finish", content=json.dumps(body), headers=sent
    )
    assert added.status_code == 200, added.text
    form = passkey_form(alice.get(REAUTH).text, "authenticate")
    answer = alice.client.post(action_of(form), data=dict(_HIDDEN.findall(form)))
    refused_for_its_cause(answer.status_code, answer.text)


# the second factor at sign-in -------------------------------------------------------


@pytest.mark.parametrize("totp", [True, False])
def test_the_sign_in_passkey_form_needs_the_script(totp: bool) -> None:
    urls = {
        name: f"/{name}"
        for name in ("stylesheet", "verify", "sign_in_passkey_begin", "sign_in_passkey_finish")
    }
    urls["passkey_script"] = "/stepup-passkeys.js"
    page = (
        environment()
        .get_template("stepup/two_factor_verify.html")
        .render(
            page_context(
                locale="en",
                urls=urls,
                csrf_field=lambda: Markup(""),
                page=VerifyPage(totp=totp, passkey=True),
            )
        )
    )
    form = passkey_form(page, "authenticate")
    assert ("autofocus" in form) is not totp  # the script focuses it once enabled
