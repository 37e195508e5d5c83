"""``STEPUP_DEFAULT_TENANT`` is a tenant id: one no store can hold (a control character,
longer than an id may be) passed ``init_app`` as a non-empty string, and every guarded
request of a user without a tenant loader then failed with a 500. ``init_app`` refuses it,
naming the setting (never the value)."""

from __future__ import annotations

import pytest
from flask import Flask

from integrations.flask.flask_support import make_app
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import ConfigurationError
from stepup.ids import MAX_ID_LENGTH
from stepup.integrations.flask import Stepup
from stepup.testing import SettableClock


def _app(tenant: object) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="test-secret-key-0123456789",
        STEPUP_STORE="memory://",
        STEPUP_DEFAULT_TENANT=tenant,
    )
    return app


@pytest.mark.parametrize(
    "tenant", ["a b\n", "acme\x00", "tab\there", "\x7f", "x" * (MAX_ID_LENGTH + 1), "\ud800"]
)
def test_a_default_tenant_no_store_can_hold_stops_init_app(tenant: str) -> None:
    with pytest.raises(ConfigurationError) as stopped:
        Stepup(_app(tenant))
    said = str(stopped.value)
    assert said.startswith("STEPUP_DEFAULT_TENANT must be a tenant id")
    assert tenant not in said


@pytest.mark.parametrize("tenant", ["a b", "acme", "Ünïcödé", "x" * MAX_ID_LENGTH])
def test_a_default_tenant_that_is_an_id_is_taken(tenant: str) -> None:
    app = _app(tenant)
    Stepup(app)
    assert app.extensions["stepup"].default_tenant == tenant


def test_the_default_tenant_decides_a_guarded_request(clock: SettableClock) -> None:
    """Without a tenant loader, a guarded request asks the default tenant's flag."""

    def no_tenant_loader(app: Flask, stepup: Stepup) -> None:
        stepup.hooks.tenant_loader = None

    test_app = make_app(
        clock=clock,
        store=MemoryStore(),
        config={"STEPUP_DEFAULT_TENANT": "a b"},
        setup=no_tenant_loader,
        ensure_tenant=False,
    )
    bob = test_app.client()
    assert bob.login("bob").status_code == 303
    allowed = bob.get("/api-key")
    assert allowed.status_code == 200
    assert allowed.json["reason"] == "flag_off"
