"""A session keeps the newest transactions it was refused for, however it serialises
them: Flask's cookie session gives a dict back with its keys sorted, so "the first key"
is the smallest digest, not the oldest."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stepup.integrations.transaction import (
    MAX_PENDING,
    PENDING_TRANSACTIONS,
    Transaction,
    note_transaction,
    pending_transaction,
)
from stepup.transactions import transaction_digest

ACTION = "workspace.destroy"


def _sorted_round_trip(session: dict[str, Any]) -> dict[str, Any]:
    """What a cookie session with ``sort_keys`` hands back on the next request."""
    loaded: dict[str, Any] = json.loads(json.dumps(session, sort_keys=True))
    return loaded


@given(st.lists(st.text(min_size=1, max_size=8), min_size=MAX_PENDING + 1, unique=True))
def test_the_oldest_transaction_goes_first(names: list[str]) -> None:
    session: dict[str, Any] = {}
    digests = []
    for at, name in enumerate(names):
        transaction = Transaction({"workspace": name}, "Delete workspace %(workspace)s")
        digest = transaction_digest(ACTION, transaction.params)
        digests.append(digest)
        note_transaction(session, "s1", ACTION, transaction, digest, float(at))
        session = _sorted_round_trip(session)
    now = float(len(names))
    kept = {d for d in digests if pending_transaction(session, "s1", ACTION, d, now)}
    assert kept == set(digests[-MAX_PENDING:])
    assert len(session[PENDING_TRANSACTIONS]) == MAX_PENDING
