"""What stepup's own pages guard stays guarded under an app's catch-all pattern: an app
that says "everything else is not sensitive" (``("*", NOT_SENSITIVE)``) has not named
removing two-factor or regenerating recovery codes, and a pattern that matches them must
not switch their guard off, in any framework (as for adding an app or a passkey)."""

from __future__ import annotations

import pytest
from flask import Flask

from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django import conf as django_conf
from stepup.integrations.flask import Stepup as FlaskStepup
from stepup.integrations.starlette import Stepup as StarletteStepup
from stepup.policy import (
    NOT_SENSITIVE,
    RECOVERY_REGENERATE,
    TWO_FACTOR_DISABLE,
    Policy,
    Rule,
    Sensitivity,
    with_own_view_rules,
)

OWN = (TWO_FACTOR_DISABLE, RECOVERY_REGENERATE)
CATCH_ALL = [("*", NOT_SENSITIVE)]


def flask_policy(base: Policy) -> Policy:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k" * 32, STEPUP_STORE="memory://", TESTING=True)
    stepup = FlaskStepup(app, policy=base)
    with app.app_context():
        return stepup.policy


def starlette_policy(base: Policy) -> Policy:
    stepup = StarletteStepup(
        store=MemoryStore(),
        secret_key="k" * 32,
        subject_loader=lambda request: None,
        tenant_loader=lambda request: "t",
        policy=base,
    )
    return stepup.policy


def django_policy(base: Policy) -> Policy:
    return django_conf.read_policy({**django_conf.DEFAULTS, "POLICY": base})


FRAMEWORKS = {"flask": flask_policy, "starlette": starlette_policy, "django": django_policy}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
@pytest.mark.parametrize(
    "base",
    [Policy.default().extend(patterns=CATCH_ALL), Policy({}, patterns=CATCH_ALL)],
    ids=["seed and catch-all", "only a catch-all"],
)
def test_a_catch_all_pattern_does_not_switch_off_the_pages_guards(
    framework: str, base: Policy
) -> None:
    policy = FRAMEWORKS[framework](base)
    for action in OWN:
        assert policy.names(action), action
        assert policy.rule_for(action).sensitivity is Sensitivity.SENSITIVE, action
    assert policy.rule_for("something.else").sensitivity is Sensitivity.NONE


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_an_app_that_names_them_keeps_its_own_rules(framework: str) -> None:
    mine = Rule(Sensitivity.CRITICAL, lifetime=60.0, description="Mine")
    base = Policy(dict.fromkeys(OWN, mine), patterns=CATCH_ALL)
    policy = FRAMEWORKS[framework](base)
    for action in OWN:
        assert policy.rule_for(action) == mine


def test_the_table_the_cli_prints_names_them_too() -> None:
    policy = with_own_view_rules(Policy({}, patterns=CATCH_ALL))
    for action in OWN:
        assert policy.rule_for(action).sensitivity is Sensitivity.SENSITIVE


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
def test_an_apps_sensitive_pattern_for_them_stays_its_rule(framework: str) -> None:
    """A stricter pattern of the app's (critical, with a code, whatever the flag) is not
    replaced by stepup's plain sensitive rule: it was, and removing two-factor then went
    through with the flag off."""
    strict = Rule(
        Sensitivity.CRITICAL, lifetime=300.0, second_factor=True, always=True, api_keys=True
    )
    policy = FRAMEWORKS[framework](Policy.default(environ={}).extend(patterns=[("2fa.*", strict)]))
    assert policy.rule_for(RECOVERY_REGENERATE) == strict
    # The seed names 2fa.disable itself (sensitive): the name wins over any pattern.
    base = Policy({"api_key.read": Rule(Sensitivity.SENSITIVE)}, patterns=[("2fa.*", strict)])
    policy = FRAMEWORKS[framework](base)
    for action in OWN:
        assert policy.rule_for(action) == strict, action
