"""Signing out forgets the TOTP enrolment the session began (``_stepup_enrolling``), in
Starlette and Django as in Flask, so a later session in the same browser begins its own."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.django._session import forget
from stepup.integrations.starlette import Stepup
from stepup.integrations.views import ENROLLING


def test_django_sign_out_forgets_the_enrolment_begun() -> None:
    session: dict[str, Any] = {ENROLLING: "totp:abc", "app's own": 1}
    forget(session)
    assert session == {"app's own": 1}


async def test_starlette_sign_out_forgets_the_enrolment_begun() -> None:
    stepup = Stepup(
        store=MemoryStore(),
        secret_key="a test key of sixteen or more",
        subject_loader=lambda request: None,
        tenant_loader=lambda request: "acme",
    )
    session: dict[str, Any] = {ENROLLING: "totp:abc", "app's own": 1}
    request = Request({"type": "http", "method": "POST", "headers": [], "session": session})
    assert await stepup.sign_out(request) == 0
    assert session == {"app's own": 1}
