"""The actions stepup's own pages guard (removing two-factor, regenerating recovery
codes) are protected: a pattern that is not sensitive never applies to them, wherever it
stands (added in code before or after stepup's own rules, or by the policy file), and an
app's sensitive pattern for them stays their rule. How patterns are tried (names first,
then patterns, the later added first, a file's in the order written) is asserted too."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepup.errors import ConfigurationError, UnknownActionError
from stepup.policy import (
    CRITICAL,
    NOT_SENSITIVE,
    RECOVERY_REGENERATE,
    SENSITIVE,
    TWO_FACTOR_DISABLE,
    Policy,
    Rule,
    Sensitivity,
    with_disable_rule,
    with_own_view_rules,
    with_recovery_rule,
)

OWN = (TWO_FACTOR_DISABLE, RECOVERY_REGENERATE)
CATCH_ALL_FILE = {"patterns": {"*": {"sensitivity": "none"}}}
APP_2FA = Rule(Sensitivity.CRITICAL, lifetime=120.0, description="the app's 2fa rule")


def _own(policy: Policy) -> Policy:
    return with_disable_rule(with_recovery_rule(policy))


def _app() -> Policy:
    return Policy({"user.update": CRITICAL}, patterns=[("2fa.*", APP_2FA)])


def test_a_later_catch_all_does_not_shadow_the_apps_sensitive_pattern() -> None:
    policy = _own(_app())
    assert policy.protected >= set(OWN)
    for later in (
        policy.extend(patterns=[("*", NOT_SENSITIVE)]),
        policy.merge_mapping(CATCH_ALL_FILE, source="policy.toml"),
        policy.extend(patterns=[("2fa.*", NOT_SENSITIVE), ("2fa.disable", NOT_SENSITIVE)]),
    ):
        for action in OWN:
            assert later.rule_for(action) == APP_2FA, action
        # Every other action goes by the patterns as before.
        assert later.rule_for("2fa.device.rename").sensitivity is Sensitivity.NONE


def test_a_catch_all_read_before_stepups_own_rules_does_not_lower_them() -> None:
    # The file first, then stepup's own rules: the app's CRITICAL pattern still applies,
    # not a weaker rule of stepup's that a NONE pattern in front made necessary.
    policy = _own(_app().merge_mapping(CATCH_ALL_FILE, source="policy.toml"))
    for action in OWN:
        assert policy.rule_for(action) == APP_2FA
    # Without a sensitive pattern of the app's, stepup names them sensitive.
    bare = _own(Policy({}).merge_mapping(CATCH_ALL_FILE, source="policy.toml"))
    for action in OWN:
        assert bare.names(action)
        assert bare.rule_for(action).sensitivity is Sensitivity.SENSITIVE
    assert bare.rule_for("anything").sensitivity is Sensitivity.NONE


def test_protection_survives_every_way_of_deriving_a_policy() -> None:
    policy = with_own_view_rules(_app())
    derived = (
        policy.with_lifetime(60.0)
        .with_sign_in_counts()
        .with_sliding_window(3600.0)
        .with_passkeys()
        .with_levels(None)
        .extend({"x": SENSITIVE})
        .merge_mapping({"passkeys": True}, source="p.toml")
    )
    assert derived.protected == policy.protected >= set(OWN)
    shadowed = derived.extend(patterns=[("*", NOT_SENSITIVE)])
    for action in OWN:
        assert shadowed.rule_for(action) == APP_2FA


def test_only_a_rule_that_names_the_action_makes_it_not_sensitive() -> None:
    policy = _own(_app())
    named = policy.extend({TWO_FACTOR_DISABLE: NOT_SENSITIVE})
    assert named.rule_for(TWO_FACTOR_DISABLE).sensitivity is Sensitivity.NONE
    from_file = policy.merge_mapping(
        {"actions": {TWO_FACTOR_DISABLE: {"sensitivity": "none"}}}, source="p.toml"
    )
    assert from_file.rule_for(TWO_FACTOR_DISABLE).sensitivity is Sensitivity.NONE
    assert from_file.rule_for(RECOVERY_REGENERATE) == APP_2FA


def test_a_stronger_file_pattern_still_applies_to_them() -> None:
    policy = _own(Policy({}, patterns=[("2fa.*", SENSITIVE)]))
    stronger = policy.merge_mapping(
        {"patterns": {"2fa.*": {"sensitivity": "critical", "second_factor": True}}},
        source="p.toml",
    )
    for action in OWN:
        rule = stronger.rule_for(action)
        assert (rule.sensitivity, rule.second_factor) == (Sensitivity.CRITICAL, True)


def test_a_protected_action_only_a_none_pattern_matches_is_unknown() -> None:
    policy = Policy({}, patterns=[("*", NOT_SENSITIVE)]).with_protected("2fa.disable")
    with pytest.raises(UnknownActionError):
        policy.rule_for("2fa.disable")
    assert "2fa.disable" not in policy
    with pytest.raises(UnknownActionError):
        policy.validate(["2fa.disable"])
    assert policy.rule_for("other").sensitivity is Sensitivity.NONE


def test_protected_names_must_be_names() -> None:
    for bad in ("2fa.disable", [""], [3]):
        with pytest.raises(ConfigurationError, match="protected"):
            Policy(protected=bad)  # type: ignore[arg-type]


# How patterns are tried --------------------------------------------------------------


def test_names_come_before_every_pattern() -> None:
    policy = Policy({"user.update": CRITICAL}).merge_mapping(CATCH_ALL_FILE, source="p.toml")
    assert policy.rule_for("user.update") == CRITICAL
    assert policy.rule_for("user.other").sensitivity is Sensitivity.NONE


def test_a_files_patterns_are_tried_before_the_codes() -> None:
    code = Policy({}, patterns=[("billing.*", SENSITIVE)])
    policy = code.merge_mapping({"patterns": {"billing.*": {"sensitivity": "none"}}}, source="p")
    assert policy.rule_for("billing.pay").sensitivity is Sensitivity.NONE
    # extend: the same, later patterns first.
    later = code.extend(patterns=[("billing.*", CRITICAL)])
    assert later.rule_for("billing.pay") == CRITICAL


def test_a_files_patterns_are_tried_in_the_order_written(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[patterns."report.*"]\nsensitivity = "none"\n\n[patterns."*"]\nsensitivity = "critical"\n'
    )
    policy = Policy({}).load_toml(path)
    assert policy.rule_for("report.view").sensitivity is Sensitivity.NONE
    assert policy.rule_for("vault.open").sensitivity is Sensitivity.CRITICAL
    path.write_text(
        '[patterns."*"]\nsensitivity = "critical"\n\n[patterns."report.*"]\nsensitivity = "none"\n'
    )
    policy = Policy({}).load_toml(path)
    assert policy.rule_for("report.view").sensitivity is Sensitivity.CRITICAL
