"""System checks: every misconfiguration is reported by ``manage.py check`` with its id,
and unknown action names fail when the view is defined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from integrations.django.django_support import BASE_STEPUP, MIDDLEWARE, fresh_services
from stepup.errors import UnknownActionError
from stepup.integrations.django.decorators import reauth_required
from stepup.integrations.django.mixins import ReauthRequiredMixin
from stepup.integrations.django.services import get_stepup


def _ids(**stepup: Any) -> list[str]:
    with override_settings(STEPUP={**BASE_STEPUP, **stepup}):
        return sorted(message.id for message in run_checks(tags=["stepup"]))


pytestmark = pytest.mark.usefixtures("fresh_services")
__all__ = ["fresh_services"]  # the fixture, from django_support


def test_the_test_project_is_clean() -> None:
    assert _ids() == []


def test_settings_must_be_a_dict_without_unknown_keys() -> None:
    with override_settings(STEPUP=["STORE"]):
        assert [m.id for m in run_checks(tags=["stepup"])] == ["stepup.E001"]
    with override_settings(STEPUP={**BASE_STEPUP, "PASWORD_HASH_LOADER": "x.y"}):
        (message,) = run_checks(tags=["stepup"])
    assert message.id == "stepup.E001"
    assert "PASWORD_HASH_LOADER" in message.msg


def test_hooks_must_import_and_be_callable() -> None:
    assert _ids(IS_TENANT_ADMIN="integrations.django.testapp.hooks.nothing_here") == ["stepup.E002"]
    assert _ids(HAS_FULL_ACCESS="integrations.django.testapp.hooks.TENANT") == ["stepup.E002"]


def test_required_hooks_and_advised_hooks() -> None:
    assert _ids(PASSWORD_HASH_LOADER=None) == ["stepup.E009"]
    assert _ids(SUBJECT_LOADER=None) == ["stepup.E009"]
    assert _ids(IS_TENANT_ADMIN=None, HAS_FULL_ACCESS=None) == ["stepup.W001", "stepup.W002"]


def test_unknown_or_async_stores_are_reported() -> None:
    from stepup.adapters.storage.redis import AsyncRedisStore

    assert _ids(STORE="mongodb://user:secret@db/x") == ["stepup.E003"]
    assert _ids(STORE=object()) == ["stepup.E003"]
    assert _ids(STORE="orm", DATABASE="nowhere") == ["stepup.E003"]
    assert _ids(STORE=AsyncRedisStore("redis://127.0.0.1:6379/0")) == ["stepup.E003"]
    with override_settings(STEPUP={**BASE_STEPUP, "STORE": "mongodb://user:secret@db/x"}):
        (message,) = run_checks(tags=["stepup"])
    assert "secret" not in message.msg  # a store URL can carry a password


@pytest.mark.parametrize("value", ["0", "-5", "6 hours", "1.5h", ""])
def test_a_bad_lifetime_is_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", value)
    with override_settings(STEPUP=BASE_STEPUP):
        (message,) = run_checks(tags=["stepup"])
    assert message.id == "stepup.E004"
    assert "SENSITIVE_ACTION_AUTH_LIFETIME" in message.msg
    assert "90s, 30m, 6h" in message.hint


def test_a_good_lifetime_reaches_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", "30m")
    with override_settings(STEPUP=BASE_STEPUP):
        assert run_checks(tags=["stepup"]) == []
        assert get_stepup().policy.lifetime == 1800


def test_the_guarded_actions_must_be_in_the_policy() -> None:
    assert _ids(POLICY="stepup.policy.Policy.default") == ["stepup.E004"]  # no recovery action
    assert _ids(DISABLE_ACTION="2fa.disabel") == ["stepup.E004"]


def test_an_unreadable_or_invalid_policy_file(tmp_path: Path) -> None:
    assert _ids(POLICY_FILE=str(tmp_path / "missing.toml")) == ["stepup.E005"]
    broken = tmp_path / "broken.toml"
    broken.write_text("[actions\n")
    assert _ids(POLICY_FILE=str(broken)) == ["stepup.E005"]
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[actions."report.download"]\nsensitivity = "extreme"\n')
    assert _ids(POLICY_FILE=str(wrong)) == ["stepup.E005"]
    good = tmp_path / "good.toml"
    good.write_text('[actions."report.download"]\nsensitivity = "critical"\nlifetime = "5m"\n')
    assert _ids(POLICY_FILE=good) == []


def test_middleware_missing_or_too_early() -> None:
    without = [m for m in MIDDLEWARE if "stepup" not in m]
    with override_settings(MIDDLEWARE=without):
        assert [m.id for m in run_checks(tags=["stepup"])] == ["stepup.E006"]
    too_early = [MIDDLEWARE[-1], *MIDDLEWARE[:-1]]
    with override_settings(MIDDLEWARE=too_early):
        assert [m.id for m in run_checks(tags=["stepup"])] == ["stepup.E007"]


def test_other_settings_are_checked() -> None:
    assert _ids(ENCRYPTION_KEYS={"k1": b"short"}) == ["stepup.E010"]
    assert _ids(SIGN_IN_TTL=0) == ["stepup.E010"]
    assert _ids(PASSWORD_HASHER="bcrypt") == ["stepup.E010"]
    assert _ids(OIDC_PROVIDERS=["corp"]) == ["stepup.E010"]
    assert _ids(RESUME_SECRET_FIELDS="kontonummer") == ["stepup.E010"]  # one string, not a list
    assert _ids(RESUME_SECRET_FIELDS=["ok", "__"]) == ["stepup.E010"]
    assert _ids(ENCRYPTION_KEYS=None) == ["stepup.W004"]


def test_unknown_actions_fail_when_the_view_is_defined() -> None:
    with pytest.raises(UnknownActionError):
        reauth_required("api_key.raed")
    with pytest.raises(UnknownActionError):

        class Typo(ReauthRequiredMixin):
            reauth_action = "workspace.delet"


def test_actions_the_policy_no_longer_knows_are_reported() -> None:
    reauth_required("billing.export")  # known to the test project's policy
    # billing.export (and, once the test app's views are imported, its workspace.destroy
    # and billing.pay, unknown to the default policy too)
    ids = _ids(POLICY="stepup.integrations.views.default_policy")
    assert ids
    assert set(ids) == {"stepup.E008"}


def test_a_broken_policy_defers_the_name_check_to_the_system_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENSITIVE_ACTION_AUTH_LIFETIME", "never")
    with override_settings(STEPUP=BASE_STEPUP):
        reauth_required("api_key.raed2")  # the import does not crash: the check reports
        assert [m.id for m in run_checks(tags=["stepup"])] == ["stepup.E004"]
    monkeypatch.delenv("SENSITIVE_ACTION_AUTH_LIFETIME")
    with override_settings(STEPUP=BASE_STEPUP):
        assert [m.id for m in run_checks(tags=["stepup"])] == ["stepup.E008"]
