"""The policy: the seed's catalog, the lifetime override, extension and TOML."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepup.errors import ConfigurationError, UnknownActionError
from stepup.policy import (
    CRITICAL,
    DEFAULT_LIFETIME,
    LIFETIME_ENV,
    NOT_SENSITIVE,
    SENSITIVE,
    Policy,
    Rule,
    Sensitivity,
    is_production_workspace,
    parse_lifetime,
    with_tenant_settings_rule,
)
from stepup.testing.strategies import action_names

SEED_ACTIONS = [
    "api_key.read",
    "api_key.copy",
    "api_key.regenerate",
    "user.update",
    "2fa.disable",
    "2fa.device.add",
    "contract.member.invite",
    "contract.member.remove",
    "contract.member.role.change",
    "workspace.member.invite",
    "workspace.member.remove",
    "workspace.member.role.change",
    "ssh_key.add",
    "ssh_key.remove",
]


@pytest.mark.parametrize("action", SEED_ACTIONS)
def test_every_seed_action_is_sensitive_with_the_installation_lifetime(action: str) -> None:
    policy = Policy.default(environ={})
    rule = policy.rule_for(action)
    assert rule.sensitivity is Sensitivity.SENSITIVE
    assert rule.applies({})
    assert policy.lifetime_for(rule) == 6 * 3600
    assert not rule.api_keys
    assert not rule.always


@pytest.mark.parametrize(
    ("context", "sensitive"),
    [
        ({"workspace_type": "full"}, True),
        ({"workspace_type": "production"}, True),
        ({"production": True}, True),
        ({"workspace_type": "sandbox"}, False),
        # The seed writes "Full (Production)": any case, blanks around, as forms send it.
        ({"workspace_type": "Full"}, True),
        ({"workspace_type": " PRODUCTION "}, True),
        # A condition that raises protection fails closed: yes as a form or JSON says it.
        ({"production": "yes"}, True),
        ({"production": "true"}, True),
        ({"production": 1}, True),
        ({"production": "no"}, False),
        ({"production": False}, False),
        ({"production": 0}, False),
        ({"workspace_type": "fullish"}, False),
        ({}, False),
        # No context at all: the rule cannot tell a sandbox from production, and applies.
        (None, True),
    ],
)
def test_workspace_delete_is_sensitive_only_for_production(
    context: dict[str, object] | None, sensitive: bool
) -> None:
    rule = Policy.default(environ={}).rule_for("workspace.delete")
    assert rule.applies(context) is sensitive


def test_a_check_without_a_context_asks_for_a_conditional_rule() -> None:
    """A guard that forgot ``context=`` for ``workspace.delete`` asks for a
    re-authentication (fail closed); one that says sandbox does not."""
    from stepup.adapters.storage.memory import MemoryStore
    from stepup.reauth import Reauth, ReauthRequired
    from stepup.records import Tenant
    from stepup.subject import Subject
    from stepup.testing import SettableClock

    store = MemoryStore()
    store.put_tenant(Tenant("t", {"feature_flags": {"sensitive_actions_reauth": True}}))
    reauth = Reauth(store, Policy.default(environ={}), clock=SettableClock())
    alice = Subject("alice", "s1")
    assert isinstance(reauth.check(alice, "workspace.delete", "t"), ReauthRequired)
    assert reauth.check(alice, "workspace.delete", "t", {"workspace_type": "sandbox"}).ok


def test_the_catalog_is_exactly_the_seed() -> None:
    """The seed's actions, plus changing the tenant settings that switch them on."""
    names = {row["action"] for row in Policy.default(environ={}).table()}
    assert names == {*SEED_ACTIONS, "workspace.delete", "tenant.settings.update"}


def test_tenant_settings_update_applies_even_with_the_flag_off() -> None:
    rule = Policy.default(environ={}).rule_for("tenant.settings.update")
    assert rule.always is True
    assert rule.sensitivity is Sensitivity.SENSITIVE
    row = next(
        r for r in Policy.default(environ={}).table() if r["action"] == "tenant.settings.update"
    )
    assert row["condition"] == "always"


def test_an_apps_own_policy_gets_the_tenant_settings_rule() -> None:
    own = Policy({"api_key.read": SENSITIVE})
    assert "tenant.settings.update" not in own
    guarded = with_tenant_settings_rule(own)
    assert guarded.rule_for("tenant.settings.update").always is True
    # An app that names the action itself keeps its own rule.
    chosen = own.extend({"tenant.settings.update": CRITICAL})
    assert with_tenant_settings_rule(chosen).rule_for("tenant.settings.update") == CRITICAL


@pytest.mark.parametrize("typo", ["api_key.raed", "API_KEY.READ", "api_key.read ", "", "2fa"])
def test_unknown_action_is_an_error(typo: str) -> None:
    with pytest.raises(UnknownActionError):
        Policy.default(environ={}).rule_for(typo)


@given(action_names())
def test_any_name_outside_the_catalog_is_refused(name: str) -> None:
    policy = Policy.default(environ={})
    if name in {*SEED_ACTIONS, "workspace.delete", "tenant.settings.update"}:
        assert name in policy
    else:
        with pytest.raises(UnknownActionError):
            policy.rule_for(name)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("21600", 21600), ("90s", 90), ("30m", 1800), ("6h", 21600), ("1", 1), ("48h", 172800)],
)
def test_lifetime_forms(value: str, seconds: float) -> None:
    assert parse_lifetime(value) == seconds
    assert Policy.default(environ={LIFETIME_ENV: value}).lifetime == seconds


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0",
        "0s",
        "-5",
        "-5m",
        "6 h",
        " 6h",
        "6h ",
        "6H",
        "1.5h",
        "6d",
        "abc",
        "1e3",
        "６h",
        "0x10",
        "+60",
    ],
)
def test_malformed_lifetime_is_a_configuration_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigurationError, match=LIFETIME_ENV):
        Policy.default(environ={LIFETIME_ENV: value})


#: Lifetimes an app might pass in code that are not seconds: ``True`` would read as one
#: second, text and ``None``-likes would be a raw ``TypeError`` from a comparison.
NOT_SECONDS = [True, False, "300", "6h", b"300", [300], float("nan"), float("inf"), 0, -1]


@pytest.mark.parametrize("value", NOT_SECONDS, ids=repr)
def test_a_lifetime_in_code_that_is_not_seconds_is_a_configuration_error(value: object) -> None:
    from stepup.policy import Rule, Sensitivity

    with pytest.raises(ConfigurationError, match="lifetime must be a number of seconds"):
        Rule(Sensitivity.SENSITIVE, lifetime=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="lifetime must be a number of seconds"):
        Policy(lifetime=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="sliding_max must be a number of seconds"):
        Policy(sliding_max=value)  # type: ignore[arg-type]


@given(st.integers(1, 366 * 86400) | st.floats(0.001, 366 * 86400))
def test_a_lifetime_in_code_is_kept_as_float_seconds(seconds: float) -> None:
    from stepup.policy import Rule, Sensitivity

    rule = Rule(Sensitivity.SENSITIVE, lifetime=seconds)
    assert rule.lifetime == seconds
    assert isinstance(rule.lifetime, float)
    assert Policy(lifetime=seconds).lifetime == seconds


def test_default_lifetime_is_six_hours() -> None:
    assert Policy.default(environ={}).lifetime == DEFAULT_LIFETIME == 21600


def test_extend_and_override_in_code() -> None:
    policy = Policy.default(environ={}).extend(
        {"report.export": CRITICAL, "api_key.read": NOT_SENSITIVE},
        patterns=[("billing.*", SENSITIVE)],
    )
    assert policy.lifetime_for(policy.rule_for("report.export")) == 300
    assert not policy.rule_for("api_key.read").applies({})
    assert policy.rule_for("billing.card.update").sensitivity is Sensitivity.SENSITIVE
    with pytest.raises(UnknownActionError):
        policy.rule_for("billingx")


def test_toml_extends_and_overrides(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "policy.toml"
    path.write_text(
        """
[actions."report.export"]
sensitivity = "critical"
lifetime = "5m"
second_factor = true
[actions."ssh_key.add"]
api_keys = true
[patterns."billing.*"]
sensitivity = "sensitive"
"""
    )
    policy = Policy.default(environ={}).load_toml(path)
    assert policy.lifetime == 6 * 3600
    export = policy.rule_for("report.export")
    assert (export.sensitivity, export.lifetime, export.second_factor) == (
        Sensitivity.CRITICAL,
        300,
        True,
    )
    assert policy.rule_for("ssh_key.add").api_keys
    assert policy.lifetime_for(policy.rule_for("ssh_key.add")) == 6 * 3600
    assert policy.rule_for("billing.x").applies({})


@pytest.mark.parametrize(
    "text",
    [
        'lifetime = "2h"',
        "[actions.x]\nsensitivity = 'extreme'",
        "[actions.x]\nlifetime = 'soon'",
        "[actions.x]\nsecond_factor = 'yes'",
        "[actions.x]\nmethods = ['sms']",
        "[actions.x]\ncolour = 'red'",
        "unknown = 1",
        "[actions",
    ],
)
def test_bad_toml_is_a_configuration_error(tmp_path, text: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=str(path)):
        Policy.default(environ={}).load_toml(path)


def test_validate_reports_the_first_unknown_name() -> None:
    policy = Policy.default(environ={})
    policy.validate(["api_key.read", "ssh_key.add"])
    with pytest.raises(UnknownActionError) as caught:
        policy.validate(["api_key.read", "ssh_key.ad"])
    assert caught.value.action == "ssh_key.ad"


@given(st.integers(min_value=1, max_value=10**6))
def test_lifetime_round_trips_in_every_unit(n: int) -> None:
    assert parse_lifetime(str(n)) == n
    assert parse_lifetime(f"{n}s") == n
    if n <= 500_000:
        assert parse_lifetime(f"{n}m") == n * 60


@pytest.mark.parametrize("given", [["pwd"], ("pwd", "oidc"), {"pwd"}, frozenset({"oidc"})])
def test_a_rules_methods_may_be_any_collection_of_names(given: object) -> None:
    rule = Rule(Sensitivity.SENSITIVE, methods=given)  # type: ignore[arg-type]
    assert rule.methods == frozenset(given)  # type: ignore[arg-type]


@pytest.mark.parametrize("given", ["pwd", 5, [], ["pwd", "telepathy"], [["pwd"]], {"pwd": 1}])
def test_methods_that_name_no_set_of_methods_fail_at_start_up(given: object) -> None:
    """A bare string or a number was a TypeError from the subset test, not the typed
    configuration error every other bad rule setting is."""
    with pytest.raises(ConfigurationError, match="a rule's methods must be"):
        Rule(Sensitivity.SENSITIVE, methods=given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("context", "production"),
    [
        ({"production": [1]}, False),
        ({"production": {}}, False),
        ({"production": {"full": 1}}, False),
        ({"production": 2}, False),
        # A parsed query string or form gives lists: any item that says so counts.
        ({"workspace_type": ["full"]}, True),
        ({"workspace_type": ["sandbox", "Full"]}, True),
        ({"production": ["yes"]}, True),
        ({"workspace_type": ["sandbox"]}, False),
    ],
)
def test_json_and_form_shaped_values_never_raise(
    context: dict[str, object], production: bool
) -> None:
    assert is_production_workspace(context) is production
