"""The default rules for adding and removing a passkey apply whatever the tenant's flag
(``always``, as ``tenant.settings.update``): a passkey proves ``phr`` on its own, so one
a stolen session adds while the flag is off would pass every re-authentication once the
flag is on (OWASP ASVS 5.0 sections 6.4 and 7.5). An app's own rule for them is kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from integrations.flask import flask_support
from integrations.starlette import starlette_support
from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.passkey_endpoint import PASSKEY_ADD, PASSKEY_REMOVE, passkey_policy
from stepup.integrations.views import default_policy
from stepup.passkeys import RelyingParty
from stepup.policy import Policy, Rule, Sensitivity
from stepup.reauth import AllowReason, Reauth
from stepup.subject import Subject
from stepup.testing import SettableClock
from stepup.testing.webauthn import SoftAuthenticator

ORIGIN = "http://localhost"
RP = RelyingParty(id="localhost", name="Test", origins=(ORIGIN,))


@pytest.mark.parametrize("action", [PASSKEY_ADD, PASSKEY_REMOVE])
def test_the_default_rules_apply_whatever_the_flag(action: str) -> None:
    policy = passkey_policy(default_policy(), RP)
    assert policy.rule_for(action).always
    store = MemoryStore()
    reauth = Reauth(store, policy, clock=SettableClock())
    decision = reauth.check(Subject("alice", "s1"), action, "no-such-tenant")  # flag off
    assert not decision.ok
    assert getattr(decision, "reason", None) is not AllowReason.FLAG_OFF


def test_an_apps_own_rules_are_kept() -> None:
    own = Rule(Sensitivity.SENSITIVE, description="Mine")
    policy = passkey_policy(Policy({PASSKEY_ADD: own, PASSKEY_REMOVE: own}), RP)
    assert policy.rule_for(PASSKEY_ADD) == own
    assert not policy.rule_for(PASSKEY_REMOVE).always
    seed = default_policy()
    assert passkey_policy(seed, None) is seed  # passkeys off: unchanged


@pytest.mark.parametrize(
    "patterns", [[("*", Rule(Sensitivity.NONE))], [("passkey.*", Rule(Sensitivity.SENSITIVE))]]
)
def test_a_pattern_that_matches_is_not_a_name(patterns: list[tuple[str, Rule]]) -> None:
    """Only an action the app names itself keeps the app's rule: a catch-all pattern (or
    ``passkey.*``) matching ``passkey.add`` must not switch stepup's guard off."""
    from stepup.policy import (
        TENANT_SETTINGS_UPDATE,
        TOTP_DEVICE_ADD,
        with_device_add_rule,
        with_tenant_settings_rule,
    )

    policy = Policy({}, patterns=patterns)
    guarded = with_tenant_settings_rule(with_device_add_rule(passkey_policy(policy, RP)))
    for action in (PASSKEY_ADD, PASSKEY_REMOVE, TENANT_SETTINGS_UPDATE):
        assert guarded.rule_for(action).always, action
    assert guarded.rule_for(TOTP_DEVICE_ADD).sensitivity is Sensitivity.SENSITIVE
    assert guarded.names(PASSKEY_ADD)
    assert not policy.names(PASSKEY_ADD)
    assert PASSKEY_ADD in policy  # matched by the pattern, yet not named


def _flask_json(browser: Any, url: str, body: Any) -> Any:
    headers = {"X-CSRF-Token": browser.csrf("/stepup/passkeys")}
    return browser.post(
        url, data=json.dumps(body), content_type="application/json", headers=headers
    )


def test_flag_off_a_stolen_session_cannot_swap_the_passkeys() -> None:
    """The review's journey in Flask: with the flag off (the default), a copy of the
    victim's session adds its own passkey and removes hers. Both now ask for a fresh
    re-authentication first (her password, which the thief does not have)."""
    store = MemoryStore()
    config = {"STEPUP_PASSKEYS_RP_ID": "localhost", "STEPUP_PASSKEYS_ORIGINS": [ORIGIN]}
    app = flask_support.make_app(
        "subject_loader", clock=SettableClock(), store=store, config=config
    )
    victim = app.client()
    assert victim.login("alice").status_code == 303
    flask_support.confirm_factors(victim)  # she confirmed it was her when she added hers
    key = SoftAuthenticator(origin=ORIGIN, counter=1)
    options = _flask_json(victim, "/stepup/passkeys/register/begin", {}).get_json()
    added = _flask_json(
        victim, "/stepup/passkeys/register/finish", {"credential": key.create(options)}
    )
    assert added.status_code == 200
    hers = added.get_json()["passkey"]["id"]

    thief = app.client()
    with victim.client.session_transaction() as session:
        stolen = dict(session)
    with thief.client.session_transaction() as session:
        session.update(stolen)
    begin = _flask_json(thief, "/stepup/passkeys/register/begin", {})
    assert begin.status_code == 401
    assert begin.get_json()["action"] == PASSKEY_ADD
    assert begin.get_json()["methods"] == ["phr"]  # her passkey, not a password
    removed = _flask_json(thief, f"/stepup/passkeys/{hers}/remove", {})
    assert removed.status_code == 401
    assert removed.get_json()["action"] == PASSKEY_REMOVE
    assert [p.credential_id for p in store.list_passkeys("alice")] == [hers]


def test_flag_off_starlette_asks_before_adding_the_first_passkey() -> None:
    app = starlette_support.make_app(
        clock=SettableClock(),
        store=MemoryStore(),
        passkeys_rp_id="localhost",
        passkeys_origins=(ORIGIN,),
    )
    alice = app.browser()
    try:
        assert alice.login("alice").status_code == 303
        token = starlette_support.csrf_token(alice.get("/stepup/passkeys").text)
        headers = {"Content-Type": "application/json", "X-CSRF-Token": token}
        begin = alice.post("/stepup/passkeys/register/begin", content="{}", headers=headers)
        assert begin.status_code == 401, begin.text
        assert begin.json()["action"] == PASSKEY_ADD
        assert begin.json()["methods"] == ["pwd"]  # no passkey yet: the password
    finally:
        alice.close()
