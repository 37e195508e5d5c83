"""A hostile POLICY_FILE (nested thousands of levels deep) is reported by the system
check as stepup.E005, "not valid TOML" naming the file, not a RecursionError."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from integrations.django.django_support import BASE_STEPUP


@pytest.fixture(autouse=True)
def _fresh_policy() -> Iterator[None]:
    from stepup.integrations.django import services

    named = set(services._actions)
    services.reset()
    yield
    services.reset()
    services._actions.clear()
    services._actions.update(named)


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
