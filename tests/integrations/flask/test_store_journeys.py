"""The same journeys on the persistent stores: SQLite from a ``STEPUP_STORE`` URL,
PostgreSQL and Redis."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations.flask.flask_support import TestApp, make_app, set_flag
from stepup.testing import SettableClock
from support import POSTGRES_URL, REDIS_URL, need, port_open


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def store_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestApp]:
    from stepup.adapters.storage.redis import RedisStore
    from stepup.adapters.storage.sql import SQLStore

    config: dict[str, Any]
    prefix = f"flask_{secrets.token_hex(4)}_"
    if request.param == "sqlite":
        config = {"STEPUP_STORE": f"sqlite:///{tmp_path / 'stepup.sqlite3'}"}
    elif request.param == "postgresql":
        need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
        sql = SQLStore(POSTGRES_URL, prefix=prefix)
        sql.create_schema()
        config = {"STEPUP_STORE": sql}
    else:
        need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
        config = {"STEPUP_STORE": RedisStore(REDIS_URL, prefix=prefix)}
    test_app = make_app("flask_login", clock=SettableClock(), config=config)
    store = test_app.app.extensions["stepup"].store
    yield test_app
    if request.param == "postgresql":
        store.drop_schema()
    if request.param == "redis":
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()
    store.close()


def test_reauth_and_two_factor_on_a_persistent_store(store_app: TestApp) -> None:
    admin, bob = store_app.client(), store_app.client()
    admin.login("alice")
    bob.login("bob")
    assert bob.get("/api-key").status_code == 200
    assert set_flag(bob).status_code == 403
    assert set_flag(admin).status_code == 200

    refused = bob.get("/api-key")
    assert refused.status_code == 303
    assert bob.reauth(refused.headers["Location"], "wrong").status_code == 400
    back = bob.reauth(refused.headers["Location"], "battery staple")
    assert back.headers["Location"] == "/api-key"
    assert bob.get("/api-key").status_code == 200
    store_app.clock.advance(6 * 3600)
    assert bob.get("/api-key").status_code == 303

    secret, codes = bob.enrol()
    bob.post("/logout")
    bob.login("bob")
    verify = "/stepup/2fa/verify"
    replayed = bob.form(verify, {"code": store_app.totp_code(secret)}, page=verify)
    assert replayed.status_code == 400
    store_app.clock.advance(30)
    assert bob.form(verify, {"code": store_app.totp_code(secret)}, page=verify).status_code == 303
    assert bob.get("/home").get_data(as_text=True) == "home of bob"

    removed = admin.form("/stepup/users/bob/2fa/remove", {})
    assert removed.status_code == 303  # the admin must re-authenticate first
    admin.reauth(removed.headers["Location"], "correct horse")
    assert admin.form("/stepup/users/bob/2fa/remove", {}).status_code == 303
    bob.post("/logout")
    assert bob.login("bob").headers["Location"] == "/home"
    assert len(codes) == 10
