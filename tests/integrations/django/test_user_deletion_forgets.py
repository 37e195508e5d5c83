"""Django: deleting a user removes their stepup data once the deletion commits (their
TOTP credential with its sealed secrets and recovery-code digests, their passkeys, their
grants), through the store's own operations: kept, a user later given the same primary
key inherited them (t9). A deletion rolled back removes nothing; another user's data
stays; a store outage never stops the deletion and is logged with the way out."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from integrations.django.django_support import Site, running_site, user_id
from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError, StoreUnavailableError
from stepup.integrations.django.services import get_stepup
from stepup.records import Credential, Passkey
from stepup.subject import Subject
from stepup.testing import SettableClock

NAME = "dora"


class DeletableProxy(get_user_model()):  # type: ignore[misc]
    """A proxy of the user model, as apps register them ("Staff", "Customer")."""

    class Meta:
        proxy = True
        app_label = "auth"


class FailingStore(MemoryStore):
    """The memory store, down for passkey listings."""

    def list_passkeys(self, user_id: str) -> tuple[Passkey, ...]:
        raise StoreUnavailableError("passkeys: the store is down")


@pytest.fixture(params=["memory", "orm"])
def site(request: pytest.FixtureRequest, clock: SettableClock) -> Iterator[Site]:
    from stepup.integrations.django.apps import _follow_user_deletions

    _follow_user_deletions()  # at start-up, with every model loaded (the proxy above too)
    store = MemoryStore() if request.param == "memory" else "orm"
    with running_site(store, clock) as running:
        yield running


@pytest.fixture
def dora(site: Site) -> Iterator[Any]:
    model = get_user_model()
    model._default_manager.filter(username=NAME).delete()
    user = model._default_manager.create_user(username=NAME, password="dora's secret")
    yield user
    model._default_manager.filter(username=NAME).delete()


def _give_data(uid: str) -> None:
    store = get_stepup().store
    store.put_credential(
        Credential(uid, f"cred-{uid}", "sealed-secret", confirmed=True, recovery_hashes=("h1",))
    )
    assert store.add_passkey(Passkey(uid, f"pk-{uid}", "key-data", "Laptop"), 10)
    get_stepup().reauth.record(Subject(uid, f"session-{uid}"), ["pwd"])


def _data_of(uid: str) -> tuple[bool, int, bool]:
    """(a credential, how many passkeys, a grant) of ``uid`` in the store."""
    store = get_stepup().store
    return (
        store.get_credential(uid) is not None,
        len(store.list_passkeys(uid)),
        store.get_grant(uid, f"session-{uid}") is not None,
    )


def test_a_deleted_users_data_is_removed(dora: Any) -> None:
    uid, alice = str(dora.pk), user_id("alice")
    _give_data(uid)
    _give_data(alice)
    assert _data_of(uid) == (True, 1, True)
    dora.delete()
    assert _data_of(uid) == (False, 0, False)
    assert _data_of(alice) == (True, 1, True)  # nobody else's


def test_deleted_through_a_queryset_and_a_proxy(dora: Any) -> None:
    uid = str(dora.pk)
    _give_data(uid)
    DeletableProxy._default_manager.filter(pk=dora.pk).delete()
    assert _data_of(uid) == (False, 0, False)


def test_removed_when_the_deletion_commits_and_not_when_it_rolls_back(dora: Any) -> None:
    uid = str(dora.pk)
    _give_data(uid)

    def delete_then_fail() -> None:
        with transaction.atomic():
            get_user_model()._default_manager.filter(pk=dora.pk).delete()
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        delete_then_fail()
    assert get_user_model()._default_manager.filter(pk=dora.pk).exists()
    assert _data_of(uid) == (True, 1, True)
    with transaction.atomic():
        dora.delete()
        assert _data_of(uid) == (True, 1, True)  # not yet: it may still roll back
    assert _data_of(uid) == (False, 0, False)


def test_the_next_user_given_the_same_key_inherits_nothing(dora: Any) -> None:
    uid, pk = str(dora.pk), dora.pk
    _give_data(uid)
    dora.delete()
    model = get_user_model()
    reborn = model._default_manager.create_user(pk=pk, username=NAME, password="another")
    assert str(reborn.pk) == uid
    assert _data_of(uid) == (False, 0, False)
    assert not get_stepup().two_factor.is_enrolled(uid)


def test_a_store_outage_never_stops_the_deletion(
    clock: SettableClock, caplog: pytest.LogCaptureFixture
) -> None:
    model = get_user_model()
    model._default_manager.filter(username=NAME).delete()
    with running_site(FailingStore(), clock):
        user = model._default_manager.create_user(username=NAME, password="dora's secret")
        uid = str(user.pk)
        with caplog.at_level(logging.WARNING, logger="stepup.integrations.django"):
            user.delete()
        assert not model._default_manager.filter(pk=uid).exists()
        assert "was not all removed" in caplog.text
        assert f"stepup_operator remove-2fa {uid}" in caplog.text


class RefusingStore(MemoryStore):
    """The memory store refusing the user's id (a primary key the store cannot take)."""

    def revoke_grants(self, user_id: str, session_id: str | None = None) -> int:
        raise MalformedInputError("user_id: not a well-formed id")


def test_an_id_the_store_refuses_never_stops_later_commit_hooks(
    clock: SettableClock, caplog: pytest.LogCaptureFixture
) -> None:
    model = get_user_model()
    model._default_manager.filter(username=NAME).delete()
    later: list[str] = []
    with running_site(RefusingStore(), clock):
        user = model._default_manager.create_user(username=NAME, password="dora's secret")
        with (
            caplog.at_level(logging.WARNING, logger="stepup.integrations.django"),
            transaction.atomic(),
        ):
            user.delete()
            transaction.on_commit(lambda: later.append("the app's own hook"))
        assert later == ["the app's own hook"]
        assert "was not removed: MalformedInputError" in caplog.text
