"""The fast paths added for the benchmarks' targets decide exactly as the slow ones.

The SQL store's one-statement claim accepts a later step without the locked
read-decide-write transaction. It must accept exactly when
:func:`stepup.throttle.apply_attempt` would, including on a row that is past its
``forget_after`` (forgotten, so any step is new) and never on a blocked row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.sql import SQLStore
from stepup.records import AttemptOutcome, ThrottleState
from stepup.throttle import ThrottlePolicy, apply_attempt
from support import POSTGRES_URL, need, port_open

T0 = 1_700_000_000.0
#: Short enough that hypothesis' time jumps cross every boundary: free failures,
#: blocks, the cap, and forgetting.
POLICY = ThrottlePolicy(free_failures=1, base_delay=10.0, max_delay=40.0, forget_after=100.0)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SQLStore]:
    if request.param == "sqlite":
        folder: Path = tmp_path_factory.mktemp("claim")
        sql = SQLStore.sqlite(folder / "claim.sqlite3")
    else:
        need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
        sql = SQLStore(POSTGRES_URL, prefix=f"claim_{uuid.uuid4().hex[:8]}_")
        sql.create_schema()
    yield sql
    if request.param == "postgresql":
        sql.drop_schema()
    sql.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    moves=st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 12)), st.floats(0, 150)),
        min_size=1,
        max_size=25,
    )
)
def test_sql_attempts_follow_the_reference_model(
    store: SQLStore, moves: list[tuple[int | None, float]]
) -> None:
    key, now, model = f"k-{uuid.uuid4().hex}", T0, ThrottleState()
    expires = now
    for step, elapsed in moves:
        now += elapsed
        current = model if now < expires else ThrottleState()  # forgotten after forget_after
        model, expected = apply_attempt(current, step, now, POLICY)
        if expected.outcome is not AttemptOutcome.THROTTLED:
            expires = now + POLICY.forget_after
        actual = store.totp_attempt(key, step, now, POLICY)
        assert actual.outcome is expected.outcome
        assert actual.failures == expected.failures
        assert actual.retry_at == pytest.approx(expected.retry_at)


def test_a_forgotten_row_accepts_an_older_step(store: SQLStore) -> None:
    key = f"k-{uuid.uuid4().hex}"
    assert store.totp_attempt(key, 50, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
    later = T0 + POLICY.forget_after + 1
    assert store.totp_attempt(key, 10, later, POLICY).outcome is AttemptOutcome.ACCEPTED
    assert store.throttle_state(key).last_step == 10


def test_a_blocked_row_is_never_claimed(store: SQLStore) -> None:
    key = f"k-{uuid.uuid4().hex}"
    assert store.totp_attempt(key, 5, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
    for _ in range(2):
        store.totp_attempt(key, None, T0, POLICY)  # the second failure blocks for 10 s
    blocked = store.totp_attempt(key, 6, T0 + 1, POLICY)
    assert blocked.outcome is AttemptOutcome.THROTTLED
    assert store.throttle_state(key).last_step == 5
    assert store.totp_attempt(key, 6, T0 + 10, POLICY).outcome is AttemptOutcome.ACCEPTED
