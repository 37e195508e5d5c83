"""A policy file's catch-all (``[patterns."*"] sensitivity = "none"``) does not switch
off removing two-factor or regenerating recovery codes in Flask or Django when the app
guards them with a sensitive pattern of its own (``("2fa.*", CRITICAL)``): stepup adds
its own rules before it reads the file, and the file's patterns are tried before the
app's, yet the app's pattern stays their rule."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from stepup.errors import ConfigurationError, UnknownActionError
from stepup.integrations.django import conf as django_conf
from stepup.integrations.flask import Stepup as FlaskStepup
from stepup.integrations.flask._config import policy_from_config
from stepup.policy import (
    CRITICAL,
    NOT_SENSITIVE,
    RECOVERY_REGENERATE,
    TWO_FACTOR_DISABLE,
    Policy,
    Rule,
    Sensitivity,
)

OWN = (TWO_FACTOR_DISABLE, RECOVERY_REGENERATE)
APP_2FA = Rule(Sensitivity.CRITICAL, lifetime=120.0, description="the app's 2fa rule")


def _catch_all(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text('[patterns."*"]\nsensitivity = "none"\n')
    return path


def _flask_config(base: Policy, path: Path) -> Policy:
    return policy_from_config(
        base, str(path), recovery_action=RECOVERY_REGENERATE, disable_action=TWO_FACTOR_DISABLE
    )


def _flask_app(base: Policy, path: Path) -> Policy:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="k" * 32, STEPUP_STORE="memory://", STEPUP_POLICY_FILE=str(path), TESTING=True
    )
    stepup = FlaskStepup(app, policy=base)
    with app.app_context():
        return stepup.policy


def _django_read(base: Policy, path: Path) -> Policy:
    return django_conf.read_policy({**django_conf.DEFAULTS, "POLICY": base, "POLICY_FILE": path})


def _django_checks(base: Policy, path: Path) -> Policy:
    # The composition the system check (stepup.E005) runs.
    values = {**django_conf.DEFAULTS, "POLICY_FILE": str(path)}
    policy = django_conf.with_policy_file(values, django_conf.with_own_rules(base, None, values))
    django_conf.check_guarded_actions(values, policy)
    return policy


PATHS: dict[str, Callable[[Policy, Path], Policy]] = {
    "flask policy_from_config": _flask_config,
    "flask app": _flask_app,
    "django read_policy": _django_read,
    "django checks": _django_checks,
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_the_files_catch_all_leaves_the_apps_pattern_their_rule(path: str, tmp_path: Path) -> None:
    base = Policy({"user.update": CRITICAL}, patterns=[("2fa.*", APP_2FA)])
    policy = PATHS[path](base, _catch_all(tmp_path))
    for action in OWN:
        assert policy.rule_for(action) == APP_2FA, action
    assert policy.rule_for("2fa.device.rename").sensitivity is Sensitivity.NONE
    assert policy.rule_for("report.view").sensitivity is Sensitivity.NONE


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_file_pattern_for_them_that_is_not_sensitive_changes_nothing(
    path: str, tmp_path: Path
) -> None:
    base = Policy.default().extend(patterns=[("*", NOT_SENSITIVE)])
    file = tmp_path / "policy.toml"
    file.write_text('[patterns."2fa.*"]\nsensitivity = "none"\n')
    policy = PATHS[path](base, file)
    for action in OWN:
        assert policy.rule_for(action).sensitivity is Sensitivity.SENSITIVE, action


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_files_catch_all_does_not_make_an_unknown_removal_action_known(
    path: str, tmp_path: Path
) -> None:
    """An app policy that does not know removing two-factor is a start-up error; a file's
    catch-all that is not sensitive does not turn it into an action that needs nothing."""
    base = Policy({"user.update": CRITICAL})
    with pytest.raises((ConfigurationError, UnknownActionError)):
        PATHS[path](base, _catch_all(tmp_path))
