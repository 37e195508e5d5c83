"""The store contract suite: one set of tests every store must pass, sync or async.

Run it against your own store in a few lines::

    import pytest
    from stepup.testing.contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            store = MyStore("...")   # construct without connecting if it is async
            yield store
            store.close()

Async stores work unchanged: the suite runs their coroutines on a private event
loop and uses asyncio tasks (instead of threads) for the concurrency tests. Every
test uses fresh random keys, so one store may serve the whole suite.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..records import AttemptOutcome, Challenge, Credential, Grant, Tenant, ThrottleState
from ..throttle import ThrottlePolicy, apply_attempt

__all__ = ["StoreContract"]

T0 = 1_700_000_000.0
THREADS = 32
ROUNDS = 20
POLICY = ThrottlePolicy()
NO_DELAY = ThrottlePolicy(free_failures=10**6, base_delay=1.0, max_delay=1.0, forget_after=3600)


def _key(prefix: str = "k") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class _Runner:
    """Calls store methods the same way whether they are sync or async."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.is_async = inspect.iscoroutinefunction(getattr(store, "totp_attempt", None))
        self.loop = asyncio.new_event_loop() if self.is_async else None

    def __call__(self, method: str, *args: Any) -> Any:
        result = getattr(self.store, method)(*args)
        if self.loop is not None:
            return self.loop.run_until_complete(result)
        return result

    def concurrently(self, method: str, calls: list[tuple[Any, ...]]) -> list[Any]:
        """Start every call at once: threads behind a barrier, or gathered tasks."""
        if self.loop is not None:

            async def gather() -> list[Any]:
                coros: list[Coroutine[Any, Any, Any]] = [
                    getattr(self.store, method)(*args) for args in calls
                ]
                return list(await asyncio.gather(*coros))

            return self.loop.run_until_complete(gather())
        barrier = threading.Barrier(len(calls))
        results: list[Any] = [None] * len(calls)

        def worker(index: int, args: tuple[Any, ...]) -> None:
            barrier.wait()
            results[index] = getattr(self.store, method)(*args)

        threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def close(self) -> None:
        if self.loop is not None:
            self.loop.close()


class StoreContract:
    """Subclass this in a test module and provide a ``store`` fixture."""

    @pytest.fixture
    def store(self) -> Any:
        raise NotImplementedError("provide a `store` fixture in your subclass")

    @pytest.fixture
    def call(self, store: Any) -> Iterator[_Runner]:
        runner = _Runner(store)
        yield runner
        if runner.loop is not None and hasattr(store, "aclose"):
            runner("aclose")  # async stores close on the loop they ran on
        runner.close()

    # replay ledger ------------------------------------------------------------

    def test_first_step_is_accepted(self, call: _Runner) -> None:
        attempt = call("totp_attempt", _key(), 100, T0, POLICY)
        assert attempt.outcome is AttemptOutcome.ACCEPTED

    def test_same_or_older_step_is_replayed(self, call: _Runner) -> None:
        key = _key()
        call("totp_attempt", key, 100, T0, NO_DELAY)
        assert call("totp_attempt", key, 100, T0, NO_DELAY).outcome is AttemptOutcome.REPLAYED
        assert call("totp_attempt", key, 99, T0, NO_DELAY).outcome is AttemptOutcome.REPLAYED
        assert call("totp_attempt", key, 101, T0, NO_DELAY).outcome is AttemptOutcome.ACCEPTED
        assert call("throttle_state", key).last_step == 101

    def test_steps_beyond_32_bits(self, call: _Runner) -> None:
        key = _key()
        big = 2**40
        assert call("totp_attempt", key, big, T0, NO_DELAY).outcome is AttemptOutcome.ACCEPTED
        assert call("totp_attempt", key, big, T0, NO_DELAY).outcome is AttemptOutcome.REPLAYED

    def test_keys_do_not_interfere(self, call: _Runner) -> None:
        first, second = _key(), _key()
        call("totp_attempt", first, 100, T0, POLICY)
        assert call("totp_attempt", second, 100, T0, POLICY).outcome is AttemptOutcome.ACCEPTED
        for _ in range(10):
            call("totp_attempt", first, None, T0, POLICY)
        assert call("throttle_state", second).failures == 0

    # throttle -----------------------------------------------------------------

    def test_failures_follow_the_schedule(self, call: _Runner) -> None:
        key = _key()
        now = T0
        for failures in range(1, 12):
            attempt = call("totp_attempt", key, None, now, POLICY)
            assert attempt.outcome is AttemptOutcome.REJECTED
            assert attempt.failures == failures
            delay = POLICY.delay_after(failures)
            if delay:
                assert attempt.retry_at == pytest.approx(now + delay)
                blocked = call("totp_attempt", key, 500, now + delay / 2, POLICY)
                assert blocked.outcome is AttemptOutcome.THROTTLED
                assert blocked.retry_at == pytest.approx(now + delay)
            else:
                assert attempt.retry_at is None
            now += delay

    def test_throttled_attempt_changes_nothing(self, call: _Runner) -> None:
        key = _key()
        for _ in range(POLICY.free_failures + 1):
            call("totp_attempt", key, None, T0, POLICY)
        before = call("throttle_state", key)
        assert call("totp_attempt", key, 7, T0 + 1, POLICY).outcome is AttemptOutcome.THROTTLED
        assert call("throttle_state", key) == before

    def test_success_clears_failures(self, call: _Runner) -> None:
        key = _key()
        for _ in range(POLICY.free_failures + 1):
            call("totp_attempt", key, None, T0, POLICY)
        later = T0 + POLICY.delay_after(POLICY.free_failures + 1)
        assert call("totp_attempt", key, 5, later, POLICY).outcome is AttemptOutcome.ACCEPTED
        assert call("throttle_state", key) == ThrottleState(0, 0.0, 5)

    def test_replay_counts_as_failure(self, call: _Runner) -> None:
        key = _key()
        call("totp_attempt", key, 5, T0, POLICY)
        assert call("totp_attempt", key, 5, T0, POLICY).failures == 1

    def test_charge_and_clear(self, call: _Runner) -> None:
        key = _key()
        tries = POLICY.free_failures + 1
        outcomes = [call("throttle_charge", key, T0, POLICY) for _ in range(tries)]
        assert [a.outcome for a in outcomes] == [AttemptOutcome.REJECTED] * len(outcomes)
        assert call("throttle_charge", key, T0, POLICY).outcome is AttemptOutcome.THROTTLED
        call("throttle_clear", key)
        assert call("throttle_charge", key, T0, POLICY).failures == 1

    def test_clear_keeps_the_last_step(self, call: _Runner) -> None:
        key = _key()
        call("totp_attempt", key, 9, T0, POLICY)
        call("throttle_clear", key)
        assert call("totp_attempt", key, 9, T0, POLICY).outcome is AttemptOutcome.REPLAYED

    def test_unknown_key_has_empty_state(self, call: _Runner) -> None:
        assert call("throttle_state", _key()) == ThrottleState()

    # concurrency ----------------------------------------------------------------

    def test_concurrent_claims_exactly_one_wins(self, call: _Runner) -> None:
        for _ in range(ROUNDS):
            key = _key()
            results = call.concurrently("totp_attempt", [(key, 42, T0, NO_DELAY)] * THREADS)
            winners = [r for r in results if r.outcome is AttemptOutcome.ACCEPTED]
            assert len(winners) == 1
            assert call("throttle_state", key).last_step == 42

    def test_concurrent_claims_on_two_keys_each_win_once(self, call: _Runner) -> None:
        first, second = _key(), _key()
        calls = [(first, 42, T0, NO_DELAY), (second, 42, T0, NO_DELAY)] * (THREADS // 2)
        results = call.concurrently("totp_attempt", calls)
        accepted = [
            args[0]
            for args, result in zip(calls, results, strict=True)
            if result.outcome is AttemptOutcome.ACCEPTED
        ]
        assert sorted(accepted) == sorted([first, second])

    def test_concurrent_failures_are_all_counted(self, call: _Runner) -> None:
        key = _key()
        call.concurrently("throttle_charge", [(key, T0, NO_DELAY)] * THREADS)
        assert call("throttle_state", key).failures == THREADS

    def test_concurrent_guesses_cannot_outrun_the_throttle(self, call: _Runner) -> None:
        key = _key()
        results = call.concurrently("totp_attempt", [(key, None, T0, POLICY)] * THREADS)
        evaluated = [r for r in results if r.outcome is not AttemptOutcome.THROTTLED]
        assert len(evaluated) == POLICY.free_failures + 1

    # model ----------------------------------------------------------------------

    # Every subclass runs this same inherited test (one per store): that is the point of
    # the suite, not the mistake `differing_executors` guards against.
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.differing_executors,
        ],
    )
    @given(
        moves=st.lists(
            st.tuples(st.one_of(st.none(), st.integers(0, 20)), st.floats(0, 4000)),
            max_size=25,
        )
    )
    def test_matches_the_reference_model(
        self, call: _Runner, moves: list[tuple[int | None, float]]
    ) -> None:
        key, now, model = _key(), T0, ThrottleState()
        for step, wait in moves:
            now += wait
            model, expected = apply_attempt(model, step, now, POLICY)
            actual = call("totp_attempt", key, step, now, POLICY)
            assert (actual.outcome, actual.failures) == (expected.outcome, expected.failures)
            assert actual.retry_at == pytest.approx(expected.retry_at)
            state = call("throttle_state", key)
            assert (state.failures, state.last_step) == (model.failures, model.last_step)

    # credentials ----------------------------------------------------------------

    def _credential(self, user_id: str, hashes: tuple[str, ...] = ("a", "b")) -> Credential:
        return Credential(
            user_id=user_id,
            credential_id=_key("totp"),
            secret="v1:k1:c2VhbGVk",  # noqa: S106 (an opaque sealed blob)
            confirmed=True,
            created_at=T0,
            recovery_hashes=hashes,
        )

    def test_credential_round_trip(self, call: _Runner) -> None:
        user = _key("user")
        credential = self._credential(user)
        assert call("get_credential", user) is None
        call("put_credential", credential)
        assert call("get_credential", user) == credential
        replaced = self._credential(user, ("c",))
        call("put_credential", replaced)
        assert call("get_credential", user) == replaced
        assert call("delete_credential", user) is True
        assert call("delete_credential", user) is False
        assert call("get_credential", user) is None

    def test_recovery_hash_is_consumed_once(self, call: _Runner) -> None:
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b")))
        assert call("consume_recovery_hash", user, "a") is True
        assert call("consume_recovery_hash", user, "a") is False
        assert call("consume_recovery_hash", user, "zzz") is False
        assert call("get_credential", user).recovery_hashes == ("b",)
        assert call("consume_recovery_hash", _key("nobody"), "b") is False

    def test_concurrent_recovery_use_wins_once(self, call: _Runner) -> None:
        user = _key("user")
        call("put_credential", self._credential(user, ("a", "b")))
        results = call.concurrently("consume_recovery_hash", [(user, "a")] * THREADS)
        assert results.count(True) == 1
        assert call("get_credential", user).recovery_hashes == ("b",)

    # tenants --------------------------------------------------------------------

    def test_tenant_round_trip(self, call: _Runner) -> None:
        tenant_id = _key("tenant")
        assert call("get_tenant", tenant_id) is None
        flags = {"sensitive_actions_reauth": True}
        tenant = Tenant(tenant_id, {"name": "Acme", "feature_flags": flags})
        call("put_tenant", tenant)
        assert call("get_tenant", tenant_id) == tenant

    # grants ---------------------------------------------------------------------

    def test_grants_are_bound_to_user_and_session(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        grant = Grant(user, "s1", frozenset({"pwd"}), T0)
        call("put_grant", grant, T0 + 3600)
        assert call("get_grant", user, "s1") == grant
        assert call("get_grant", user, "s2") is None
        assert call("get_grant", other, "s1") is None

    def test_new_grant_replaces_the_old(self, call: _Runner) -> None:
        user = _key("user")
        call("put_grant", Grant(user, "s1", frozenset({"pwd"}), T0), T0 + 3600)
        newer = Grant(user, "s1", frozenset({"oidc", "otp"}), T0 + 10)
        call("put_grant", newer, T0 + 3600)
        assert call("get_grant", user, "s1") == newer

    def test_revoke_one_session_or_all(self, call: _Runner) -> None:
        user, other = _key("user"), _key("user")
        for session in ("s1", "s2", "s3"):
            call("put_grant", Grant(user, session, frozenset({"pwd"}), T0), T0 + 3600)
        call("put_grant", Grant(other, "s1", frozenset({"pwd"}), T0), T0 + 3600)
        assert call("revoke_grants", user, "s1") == 1
        assert call("get_grant", user, "s1") is None
        assert call("get_grant", user, "s2") is not None
        assert call("revoke_grants", user) == 2
        assert call("get_grant", user, "s3") is None
        assert call("get_grant", other, "s1") is not None

    # challenges -----------------------------------------------------------------

    def _challenge(self, expires_at: float) -> Challenge:
        return Challenge(_key("state"), "u1", "s1", T0, expires_at, {"nonce": "n", "verifier": "v"})

    def test_challenge_is_taken_once(self, call: _Runner) -> None:
        challenge = self._challenge(T0 + 600)
        call("put_challenge", challenge)
        assert call("take_challenge", challenge.challenge_id, T0 + 1) == challenge
        assert call("take_challenge", challenge.challenge_id, T0 + 2) is None
        assert call("take_challenge", _key("unknown"), T0) is None

    def test_expired_challenge_is_refused_and_gone(self, call: _Runner) -> None:
        challenge = self._challenge(T0 + 600)
        call("put_challenge", challenge)
        assert call("take_challenge", challenge.challenge_id, T0 + 600) is None
        assert call("take_challenge", challenge.challenge_id, T0 + 1) is None

    def test_concurrent_take_wins_once(self, call: _Runner) -> None:
        challenge = self._challenge(T0 + 600)
        call("put_challenge", challenge)
        results = call.concurrently("take_challenge", [(challenge.challenge_id, T0)] * THREADS)
        assert [r for r in results if r is not None] == [challenge]
