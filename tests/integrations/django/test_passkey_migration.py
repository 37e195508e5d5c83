"""Migration 0003 adds the passkeys table to an existing project and changes nothing
else: credentials stored before it are still there, and passkeys work after it."""

from __future__ import annotations

from stepup.integrations.django.models import PasskeyRecord
from stepup.integrations.django.store import DjangoStore
from stepup.records import Credential, Passkey


def test_migration_0003_adds_passkeys_to_an_existing_project() -> None:
    from django.core.management import call_command
    from django.db import connections

    connection = connections["default"]
    table = PasskeyRecord._meta.db_table
    store = DjangoStore(using="default")
    call_command("migrate", "stepup", "0002", verbosity=0)
    try:
        assert table not in connection.introspection.table_names()
        store.put_credential(Credential("before-0003", "totp:old", "plain:S", confirmed=True))
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
