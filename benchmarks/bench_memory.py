"""Bytes the memory store keeps per enrolled user, measured with tracemalloc.

Users are enrolled through the real lifecycle: ``TwoFactor.begin_enrolment`` (a new
secret, sealed with AES-GCM) then ``confirm_enrolment`` with a valid code (which burns
the step in the replay ledger and creates ten recovery-code hashes). What a user costs
is the difference in traced memory between two store sizes, divided by the difference
in users, so fixed costs (the store, interned strings, caches) cancel out. A second
row measures one replay-ledger entry alone (``TOTPVerifier.verify`` by a credential
never seen before), the state every verified credential leaves behind.

    .venv/bin/python benchmarks/bench_memory.py [--quick] [--markdown]
"""

from __future__ import annotations

import gc
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import BOX
from report import Measure, Row, cli

from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock
from stepup.totp import TOTP, generate_secret
from stepup.twofactor import TwoFactor
from stepup.verifier import TOTPVerifier

GROUP = "Memory, MemoryStore"


def _marginal(grow: Callable[[int, int], None], first: int, second: int) -> float:
    """Traced bytes per item between ``first`` and ``second`` items made by ``grow``."""
    tracemalloc.start()
    try:
        grow(0, first)
        gc.collect()
        at_first = tracemalloc.get_traced_memory()[0]
        grow(first, second)
        gc.collect()
        at_second = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (at_second - at_first) / (second - first)


def enrolled_user_bytes(first: int, second: int) -> float:
    store = MemoryStore()
    clock = SettableClock()
    two_factor = TwoFactor(store, box=BOX, clock=clock)

    def grow(start: int, stop: int) -> None:
        for index in range(start, stop):
            user_id = f"user-{index:07d}"
            enrolment = two_factor.begin_enrolment(user_id, f"{user_id}@example.com")
            confirmation = two_factor.confirm_enrolment(user_id, TOTP(enrolment.secret).at(clock()))
            assert confirmation.ok, confirmation
            clock.advance(1.0)

    per_user = _marginal(grow, first, second)
    credential = store.get_credential(f"user-{second - 1:07d}")
    assert credential is not None
    assert credential.confirmed
    assert len(credential.recovery_hashes) == 10
    return per_user


def ledger_entry_bytes(first: int, second: int) -> float:
    store = MemoryStore()
    verifier = TOTPVerifier(store, window=1)
    totp = TOTP(generate_secret())
    code = totp.at(time.time())

    def grow(start: int, stop: int) -> None:
        for index in range(start, stop):
            assert verifier.verify(f"totp:{index:07d}", totp, code).ok

    return _marginal(grow, first, second)


def rows(quick: bool) -> list[Row]:
    first, second = (50, 150) if quick else (1_000, 4_000)
    user = enrolled_user_bytes(first, second)
    entry = ledger_entry_bytes(first * 10, second * 10)
    return [
        Row(
            GROUP,
            "per enrolled user (credential, 10 recovery hashes, ledger entry)",
            Measure(user, unit="B"),
            note=f"marginal bytes between {first:,} and {second:,} users enrolled through "
            "TwoFactor with sealed secrets (tracemalloc).",
        ),
        Row(
            GROUP,
            "per replay-ledger entry (a verified credential)",
            Measure(entry, unit="B"),
            note=f"marginal bytes between {first * 10:,} and {second * 10:,} credentials.",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], rows, argv)


if __name__ == "__main__":
    sys.exit(main())
