"""Migrations 0003 and 0005 on an existing project: 0003 adds the passkeys table and
0005 the TOTP devices column, and neither changes anything else: credentials stored
before them are still there and work after them."""

from __future__ import annotations

from typing import Any

from stepup.integrations.django.models import CredentialRecord, PasskeyRecord
from stepup.integrations.django.store import DjangoStore
from stepup.records import Passkey
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor

SECRET = "JBSWY3DPEHPK3PXP"


def _insert_old_credential(connection: Any, user_id: str, credential_id: str, secret: str) -> None:
    """A credential row as a project stored it before 0005 (the model has more columns
    now, so the ORM cannot write the old shape)."""
    table = connection.ops.quote_name(CredentialRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, credential_id, secret, digits, period, algorithm,"  # noqa: S608
            " confirmed, created_at, version) VALUES (%s, %s, %s, 6, 30, 'SHA1', %s, 1.0, 1)",
            [user_id, credential_id, secret, True],
        )


def test_migration_0003_adds_passkeys_to_an_existing_project() -> None:
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    table = PasskeyRecord._meta.db_table
    store = DjangoStore(using="default")
    call_command("migrate", "stepup", "0002", verbosity=0)
    try:
        assert table not in connection.introspection.table_names()
        _insert_old_credential(connection, "before-0003", "totp:old", "plain:S")
    finally:
        call_command("migrate", "stepup", verbosity=0)
    try:
        assert table in connection.introspection.table_names()
        stored = store.get_credential("before-0003")
        assert stored is not None
        assert (stored.credential_id, stored.version) == ("totp:old", 1)
        passkey = Passkey("before-0003", "cred-0003", "key", "Laptop", created_at=1.0)
        assert store.list_passkeys("before-0003") == ()
        assert store.add_passkey(passkey, 10) is True
        assert store.list_passkeys("before-0003") == (passkey,)
    finally:
        store.remove_passkey("before-0003", "cred-0003")
        store.delete_credential("before-0003")


def test_migration_0005_reads_a_single_totp_credential_as_one_device() -> None:
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    store = DjangoStore(using="default")
    box = SecretBox({"k1": bytes(32)}, "k1")
    user = "before-0005"
    call_command("migrate", "stepup", "0004", verbosity=0)
    try:
        columns = connection.introspection.get_table_description(
            connection.cursor(), CredentialRecord._meta.db_table
        )
        assert "devices" not in {column.name for column in columns}
        sealed = box.seal(SECRET, context="totp:legacy")
        _insert_old_credential(connection, user, "totp:legacy", sealed)
    finally:
        call_command("migrate", "stepup", verbosity=0)
    try:
        stored = store.get_credential(user)
        assert stored is not None
        assert stored.devices == ()  # nothing was moved
        (device,) = stored.totp_devices
        assert (device.device_id, device.secret, device.confirmed) == ("totp:legacy", sealed, True)
        clock = SettableClock(1_700_000_000)
        two_factor = TwoFactor(store, box=box, clock=clock)
        assert two_factor.verify(user, TOTP(SECRET).at(clock())).ok
        # That verification wrote the device's last use: the row now has the new shape.
        (device,) = two_factor.devices(user)
        assert (device.device_id, device.last_used_at) == ("totp:legacy", clock())
        stored = store.get_credential(user)
        assert stored is not None
        assert stored.secret == ""
        assert len(stored.devices) == 1
        clock.advance(30)
        added = two_factor.begin_device(user, "user@example.com", name="Tablet")
        assert two_factor.confirm_device(user, TOTP(added.secret).at(clock())).ok
        assert [d.name for d in two_factor.devices(user)] == ["", "Tablet"]
    finally:
        store.delete_credential(user)
