"""The ORM store keeps documents as JSON text: what JSON cannot hold (NaN, infinity, an
object that is not JSON data) is refused as malformed input before anything is
written, on SQLite and on PostgreSQL, and what is stored stays as it was."""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from stepup.errors import MalformedInputError
from stepup.integrations.django.store import DjangoStore
from stepup.records import Challenge, Tenant

T0 = 1_700_000_000.0
NOT_JSON = [math.nan, math.inf, -math.inf, {1, 2}, b"bytes"]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> DjangoStore:
    if request.param == "sqlite":
        return DjangoStore(using="default")
    return DjangoStore(using=request.getfixturevalue("postgres_database"))


@pytest.mark.parametrize("bad", NOT_JSON, ids=repr)
def test_attributes_json_cannot_hold_are_refused_and_change_nothing(
    store: DjangoStore, bad: Any
) -> None:
    tenant_id, fresh_id = f"t-{uuid.uuid4().hex}", f"t-{uuid.uuid4().hex}"
    kept = Tenant(tenant_id, {"ratio": 0.5, "feature_flags": {"beta": True}})
    store.put_tenant(kept)
    refused = [
        lambda: store.put_tenant(Tenant(tenant_id, {"ratio": bad})),
        lambda: store.add_tenant(Tenant(fresh_id, {"ratio": bad})),
        lambda: store.patch_tenant(tenant_id, {"ratio": bad}, {}),
        lambda: store.put_challenge(
            Challenge(f"c-{uuid.uuid4().hex}", "u", "s", T0, T0 + 9, {"x": bad})
        ),
    ]
    for write in refused:
        with pytest.raises(MalformedInputError, match="is not JSON data"):
            write()
    assert store.get_tenant(tenant_id) == kept
    assert store.get_tenant(fresh_id) is None
