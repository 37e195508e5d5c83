"""A ``TENANT_LOADER`` that answers something other than text (a model instance, an int)
is refused, as Flask and Starlette refuse it: Django once turned it into text with
``str()``, a tenant id nobody configured, whose flag is off, so every guarded view ran
for a tenant whose admin had turned the flag on."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest

from integrations.django.django_support import TENANT, running_site, set_flag
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.testing import SettableClock

HERE = __name__  # the loader is imported by name: this very module


class Organization:
    """What ``request.user.organization`` might be: its display name is not its id."""

    def __init__(self, pk: str) -> None:
        self.pk = pk

    def __str__(self) -> str:
        return "Acme Corp"


#: What the loader below answers once the flag is on (``TENANT`` until then).
ANSWER: list[Any] = [TENANT]


def tenant(request: HttpRequest) -> Any:
    return ANSWER[-1]


@pytest.mark.parametrize(
    ("answer", "refused"),
    [(Organization(TENANT), True), (7, True), (TENANT, False)],
    ids=["model", "int", "text"],
)
def test_only_a_text_tenant_id_is_used(answer: Any, refused: bool) -> None:
    with running_site(MemoryStore(), SettableClock(), TENANT_LOADER=f"{HERE}.tenant") as site:
        from stepup.integrations.django.services import get_stepup

        get_stepup().tenant_settings.ensure(TENANT)
        admin = site.browser("alice")
        ANSWER[:] = [TENANT]
        assert set_flag(admin).status_code == 200
        ANSWER.append(answer)
        if refused:
            with pytest.raises(MalformedInputError):
                admin.get("/api-key/")
        else:
            assert admin.get("/api-key/").status_code == 303  # flag on: asked to re-auth
