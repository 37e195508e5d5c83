"""``manage.py check`` refuses a ``STEPUP['TOTP_ISSUER']`` no enrolment can use (one
holding ':', the Key URI's label separator): TwoFactor refuses it when the services are
built, which the check does, instead of every user's enrolment failing later."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import override_settings

from integrations.django.django_support import BASE_STEPUP, fresh_services

pytestmark = pytest.mark.usefixtures("fresh_services")
__all__ = ["fresh_services"]  # the fixture, from django_support


@pytest.mark.parametrize("issuer", ["Acme: Payments", "é" * 200])
def test_an_issuer_no_key_uri_can_hold_is_a_check_error(issuer: str) -> None:
    with override_settings(STEPUP={**BASE_STEPUP, "TOTP_ISSUER": issuer}):
        (message,) = run_checks(tags=["stepup"])
    assert message.id == "stepup.E010"
    assert "issuer" in message.msg


def test_a_usable_issuer_passes() -> None:
    with override_settings(STEPUP={**BASE_STEPUP, "TOTP_ISSUER": "Acme Payments"}):
        assert run_checks(tags=["stepup"]) == []
