"""A hostile POLICY_FILE (nested thousands of levels deep) is reported by the system
check as stepup.E005, "not valid TOML" naming the file, not a RecursionError."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from integrations.django.django_support import BASE_STEPUP, fresh_services

pytestmark = pytest.mark.usefixtures("fresh_services")
__all__ = ["fresh_services"]  # the fixture, from django_support


@pytest.mark.parametrize("nesting", [("[", "]"), ("{a=", "}")], ids=["arrays", "inline tables"])
def test_a_deeply_nested_policy_file_is_e005(tmp_path: Path, nesting: tuple[str, str]) -> None:
    opening, closing = nesting
    path = tmp_path / "deep.toml"
    inner = "1" if opening.startswith("{") else ""
    path.write_text("x = " + opening * 5000 + inner + closing * 5000 + "\n")
    with override_settings(STEPUP={**BASE_STEPUP, "POLICY_FILE": str(path)}):
        messages = run_checks(tags=["stepup"])
    assert [m.id for m in messages] == ["stepup.E005"]
    assert messages[0].msg.startswith(f"{path}: not valid TOML")
