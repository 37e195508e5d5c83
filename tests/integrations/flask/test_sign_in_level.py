"""An SSO sign-in that counts keeps the level its provider's signed acr proved: the
app's own sign-in hands ``level=`` to ``note_sign_in`` / ``record_sign_in``."""

from __future__ import annotations

from typing import Any

from flask import Flask

from integrations.flask.flask_support import app_policy, make_app
from stepup.assurance import Level, Levels
from stepup.integrations.flask import Stepup
from stepup.policy import Rule, Sensitivity
from stepup.reauth import SignInCounted

LEVELS = Levels(
    (
        Level("password", acr=("urn:pwd",), methods=(("pwd",),)),
        Level("mfa", acr=("urn:mfa",), methods=(("pwd", "otp"),)),
    )
)


def test_a_counted_sign_in_keeps_its_level() -> None:
    outcomes: list[Any] = []

    def routes(app: Flask, stepup: Stepup) -> None:
        def counted() -> str:
            outcomes.append(stepup.record_sign_in(("pwd", "otp"), level="mfa"))
            return "counted"

        app.add_url_rule("/test-count", "test_count", counted)

    policy = (
        app_policy()
        .with_levels(LEVELS)
        .extend({"billing.pay": Rule(Sensitivity.SENSITIVE, level="mfa")})
        .with_sign_in_counts()
    )
    test_app = make_app(policy=policy, setup=routes)
    alice = test_app.client()
    assert alice.login("alice").status_code == 303
    assert alice.get("/test-count").status_code == 200
    [outcome] = outcomes
    assert isinstance(outcome, SignInCounted)
    assert outcome.grant.level == "mfa"
