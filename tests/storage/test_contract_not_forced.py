"""A forced race case that could not force its interleaving never passes: a store that
reads its own backend (not through its public getter) is skipped, saying what was not
tested, unless it says each operation is one atomic step (stepup's own stores); and the
thread cases switch threads often enough to catch such a store when it reads and writes
without holding anything."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.records import Attempt, Credential
from stepup.testing.contract import StoreContract, _Runner
from stepup.throttle import apply_attempt, apply_charge, keep_until

FORCED = {
    "test_attempts_made_inside_an_attempt_are_all_counted": ("totp_attempt", "throttle_state"),
    "test_a_claim_made_inside_a_claim_wins_alone": ("totp_attempt", "throttle_state"),
    "test_an_add_inside_an_add_wins_alone": ("add_credential", "get_credential"),
    "test_a_code_spent_inside_a_replace_stays_spent": ("replace_credential", "get_credential"),
    "test_a_patch_keeps_a_patch_made_inside_it": ("patch_tenant", "get_tenant"),
    "test_a_code_spent_inside_a_spend_wins_alone": ("consume_recovery_hash", "get_credential"),
    "test_a_code_spent_inside_the_spend_of_another_stays_spent": (
        "consume_recovery_hash",
        "get_credential",
    ),
    "test_a_use_recorded_inside_a_use_wins_alone": ("record_passkey_use", "list_passkeys"),
    "test_a_rename_or_removal_inside_a_use_stands": ("record_passkey_use", "list_passkeys"),
}


class ReadsItsOwnDicts(MemoryStore):
    """Read, decide, write, holding nothing, reading its own dicts rather than its
    public getters, as a store over a database does with SELECT then UPDATE."""

    atomic_operations = False  # what it is: MemoryStore holds its lock, this does not

    def totp_attempt(self, key: str, step: int | None, now: float, throttle: Any) -> Attempt:
        state, attempt = apply_attempt(self._state(key, now), step, now, throttle)
        self._attempts[key] = (state, keep_until(state, now, throttle))
        return attempt

    def throttle_charge(self, key: str, now: float, throttle: Any) -> Attempt:
        state, attempt = apply_charge(self._state(key, now), now, throttle)
        self._attempts[key] = (state, keep_until(state, now, throttle))
        return attempt

    def add_credential(self, credential: Credential) -> bool:
        if credential.user_id in self._credentials:
            return False
        self._credentials[credential.user_id] = replace(credential, version=1)
        return True


def _run(case: str, store: Any) -> None:
    runner = _Runner(store)
    try:
        getattr(StoreContract(), case)(runner)
    finally:
        runner.close()


@pytest.mark.parametrize("case", sorted(FORCED))
def test_a_case_that_forced_nothing_is_skipped_saying_so(case: str) -> None:
    outer, read = FORCED[case]
    with pytest.raises(pytest.skip.Exception) as skipped:
        _run(case, ReadsItsOwnDicts())
    assert str(skipped.value) == (
        f"could not force the interleaving inside {outer} of {__name__}.ReadsItsOwnDicts:"
        f" the store does not read through {read} (and does not say atomic_operations ="
        " True); only the thread cases test it"
    )


@pytest.mark.parametrize("case", sorted(FORCED))
def test_a_store_of_atomic_operations_passes_without_a_skip_or_a_warning(case: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run(case, MemoryStore())


def test_the_thread_cases_switch_threads_often_and_put_the_interval_back() -> None:
    seen: list[float] = []

    class Watching(MemoryStore):
        def throttle_charge(self, key: str, now: float, throttle: Any) -> Attempt:
            seen.append(sys.getswitchinterval())
            return super().throttle_charge(key, now, throttle)

    before = sys.getswitchinterval()
    _run("test_concurrent_failures_are_all_counted", Watching())
    assert seen
    assert max(seen) <= 1e-5 < before
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize(
    ("case", "method"),
    [
        ("test_concurrent_take_wins_once", "take_challenge"),
        ("test_concurrent_recovery_use_wins_once", "consume_recovery_hash"),
        ("test_concurrent_uses_with_one_expected_count_one_wins", "record_passkey_use"),
    ],
)
def test_the_single_use_thread_cases_yield_inside_the_method_and_leave_no_profile(
    case: str, method: str
) -> None:
    """Each thread of these cases runs the store's method under a profile function
    that lets the other threads run after every call the method makes; the test's own
    thread keeps its profile, and none is left on the threads."""
    profiled: list[bool] = []
    real = getattr(MemoryStore, method)

    def watched(self: MemoryStore, *args: Any) -> Any:
        profiled.append(sys.getprofile() is not None)
        return real(self, *args)

    watching = type("Watching", (MemoryStore,), {method: watched})
    mine = sys.getprofile()
    _run(case, watching())
    assert profiled
    assert all(profiled)
    assert sys.getprofile() is mine
