"""Django on PostgreSQL with ``ATOMIC_REQUESTS``: a signal receiver whose query fails
(say an audit table not migrated yet) is logged and swallowed, but PostgreSQL aborts the
whole transaction, so what the request did next failed: ``logout()``'s
``session.flush()`` answered 500, and the session and the grant survived. The receivers
now run inside a savepoint on every connection in a transaction, rolled back when one
failed: the sign-out answers 303, the session ends, the grant is revoked."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db import DatabaseError, connections, transaction
from django.test import override_settings

from integrations.django.django_support import Site, fresh_grant, running_site, user_id
from stepup.events import GrantsRevoked
from stepup.integrations.django.models import GrantRecord, TenantRecord
from stepup.integrations.django.services import get_stepup
from stepup.integrations.django.signals import forward_events, grants_revoked
from stepup.testing import SettableClock

pytestmark = pytest.mark.postgres

DB = "postgres"


class _SessionsOnPostgres:
    """The sessions in the same PostgreSQL database as stepup's store, as in a project
    with one database: the session's flush runs in the request's transaction."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return DB if model._meta.app_label == "sessions" else None

    db_for_write = db_for_read


def _sql(statement: str, params: list[Any] | None = None) -> None:
    with connections[DB].cursor() as cursor:
        cursor.execute(statement, params)


@pytest.fixture
def atomic_site(postgres_database: str, clock: SettableClock) -> Iterator[Site]:
    """ATOMIC_REQUESTS on the PostgreSQL database that holds the store and the sessions,
    and an audit table the receivers may write to."""
    for model in (GrantRecord, TenantRecord):
        model.objects.using(DB).all().delete()
    _sql("CREATE TABLE IF NOT EXISTS stepup_test_audit_log (what text)")
    _sql("DELETE FROM stepup_test_audit_log")
    database = connections.settings[DB]
    database["ATOMIC_REQUESTS"] = True
    try:
        with (
            override_settings(DATABASE_ROUTERS=[_SessionsOnPostgres()]),
            running_site("orm", clock, DATABASE=DB) as site,
        ):
            get_stepup().tenant_settings.ensure("acme")
            yield site
    finally:
        database["ATOMIC_REQUESTS"] = False


def _audited() -> list[str]:
    with connections[DB].cursor() as cursor:
        cursor.execute("SELECT what FROM stepup_test_audit_log")
        return [row[0] for row in cursor.fetchall()]


def _write_audit(sender: Any, event: Any, **kwargs: Any) -> None:
    _sql("INSERT INTO stepup_test_audit_log (what) VALUES (%s)", [event.name])


def _failing_query(sender: Any, event: Any, **kwargs: Any) -> None:
    _sql("INSERT INTO stepup_test_no_such_table (what) VALUES (%s)", [event.name])


def _writes_then_fails(sender: Any, event: Any, **kwargs: Any) -> None:
    _write_audit(sender, event)
    raise RuntimeError("the audit receiver broke after writing")


def _swallows_its_failed_query(sender: Any, event: Any, **kwargs: Any) -> None:
    with suppress(DatabaseError):  # "best effort": PostgreSQL aborted the transaction anyway
        _failing_query(sender, event)


def _signs_out(site: Site, *receivers: Callable[..., None]) -> None:
    """bob signs out with ``receivers`` on ``grants_revoked``: 303, his session row gone,
    his grant revoked, and he is signed out for the next request."""
    for index, receiver in enumerate(receivers):
        grants_revoked.connect(receiver, dispatch_uid=f"savepoint-test-{index}")
    try:
        bob = site.browser("bob")
        bob.client.raise_request_exception = False
        fresh_grant(bob)
        grants = GrantRecord.objects.using(DB).filter(user_id=user_id("bob"))
        assert grants.count() == 1
        key = bob.client.cookies["sessionid"].value
        assert Session.objects.using(DB).filter(session_key=key).exists()
        assert bob.logout().status_code == 303
        assert not Session.objects.using(DB).filter(session_key=key).exists()
        assert grants.count() == 0
        assert bob.get("/home/").content == b"home of nobody"
    finally:
        for index in range(len(receivers)):
            grants_revoked.disconnect(dispatch_uid=f"savepoint-test-{index}")


def test_a_receiver_whose_query_fails(atomic_site: Site, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="stepup.integrations.django"):
        _signs_out(atomic_site, _failing_query)
    assert "stepup signal receiver" in caplog.text
    assert "GrantsRevoked" in caplog.text


def test_a_receiver_that_swallows_its_failed_query(
    atomic_site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="stepup.integrations.django"):
        _signs_out(atomic_site, _swallows_its_failed_query)
    assert "left a failed query on GrantsRevoked" in caplog.text


def test_what_a_failing_receiver_wrote_is_rolled_back(atomic_site: Site) -> None:
    _signs_out(atomic_site, _write_audit, _writes_then_fails)
    assert _audited() == []  # the event's receivers changed nothing


def test_what_the_receivers_wrote_stays_when_none_failed(atomic_site: Site) -> None:
    _signs_out(atomic_site, _write_audit)
    assert _audited() == ["GrantsRevoked"]


def test_outside_a_request(atomic_site: Site) -> None:
    """The app's own ``atomic`` block: after a failing receiver the block goes on, and
    what it wrote before the event commits."""
    grants_revoked.connect(_failing_query, dispatch_uid="savepoint-test-atomic")
    try:
        with transaction.atomic(using=DB):
            _sql("INSERT INTO stepup_test_audit_log (what) VALUES ('before')")
            event = GrantsRevoked(
                at=0.0, user_id="bob", session_id=None, count=0, reason="password_changed"
            )
            forward_events(event)
            _sql("INSERT INTO stepup_test_audit_log (what) VALUES ('after')")
    finally:
        grants_revoked.disconnect(dispatch_uid="savepoint-test-atomic")
    assert _audited() == ["before", "after"]
