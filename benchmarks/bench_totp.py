"""stepup's TOTPVerifier.verify (memory store, replay claim included) against pyotp.

Every stepup call is a real, accepted verification: a valid code for the current
step, presented for a credential that has never been used, so the store records a
new last step each time. pyotp's ``verify(code, valid_window=1)`` does no replay
check at all. Both read the real clock. Target: stepup at least 2x faster.

    .venv/bin/python benchmarks/bench_totp.py [--rounds 30] [--inner 2000] [--profile]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import version
from pathlib import Path

import pyotp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Comparison, compare, format_row, header

from stepup.adapters.storage.memory import MemoryStore
from stepup.totp import TOTP, generate_secret
from stepup.verifier import TOTPVerifier, VerifyReason

TARGET = 2.0


class Scenario:
    """One secret, one live code, and a supply of never-used credential ids."""

    def __init__(self, calls: int) -> None:
        self.secret = generate_secret()
        self.totp = TOTP(self.secret)
        self.theirs = pyotp.TOTP(self.secret)
        self.store = MemoryStore()
        self.verifier = TOTPVerifier(self.store, window=1)
        self.ids = [f"cred-{i}" for i in range(calls)]
        self._next: Iterator[str] = iter(self.ids)
        self.used = 0
        self.code = ""
        self.refresh()

    def refresh(self) -> None:
        """Untimed, before each round: the code of the current step; check pyotp takes it."""
        self.code = self.totp.at(time.time())
        assert self.theirs.verify(self.code, valid_window=1), "pyotp must accept the code"

    def fresh_id(self) -> str:
        self.used += 1
        return next(self._next)

    def check(self) -> None:
        """Every stepup call was accepted: each used credential has a last step, no failure."""
        for credential_id in self.ids[: self.used]:
            state = self.store.throttle_state(credential_id)
            assert state.last_step is not None, f"{credential_id} was not accepted"
            assert state.failures == 0, f"{credential_id} recorded a failure"


def prepared_totp(scenario: Scenario) -> tuple[Callable[[], object], Callable[[], object]]:
    verify, totp, fresh = scenario.verifier.verify, scenario.totp, scenario.fresh_id
    theirs = scenario.theirs

    def ours() -> object:
        return verify(fresh(), totp, scenario.code)

    def pyotp_verify() -> object:
        return theirs.verify(scenario.code, valid_window=1)

    return ours, pyotp_verify


def from_secret(scenario: Scenario) -> tuple[Callable[[], object], Callable[[], object]]:
    """Both sides also build their TOTP object from the base32 secret on every call."""
    verify, secret, fresh = scenario.verifier.verify, scenario.secret, scenario.fresh_id

    def ours() -> object:
        return verify(fresh(), TOTP(secret), scenario.code)

    def pyotp_verify() -> object:
        return pyotp.TOTP(secret).verify(scenario.code, valid_window=1)

    return ours, pyotp_verify


def run(rounds: int, inner: int, warmup: int = 3) -> list[Comparison]:
    results = []
    cases = [
        ("TOTPVerifier.verify vs pyotp verify(window=1)", prepared_totp),
        ("  same, building TOTP from the secret each call", from_secret),
    ]
    for label, build in cases:
        scenario = Scenario((rounds + warmup) * inner + 1)
        first = scenario.verifier.verify(scenario.fresh_id(), scenario.totp, scenario.code)
        assert first.reason is VerifyReason.OK, first
        ours, theirs = build(scenario)
        results.append(
            compare(
                label,
                ("stepup", ours),
                ("pyotp", theirs),
                rounds=rounds,
                inner=inner,
                warmup=warmup,
                before_round=scenario.refresh,
            )
        )
        scenario.check()
    return results


def profile(inner: int) -> None:
    from pyinstrument import Profiler

    scenario = Scenario(inner * 5)
    ours, _ = prepared_totp(scenario)
    with Profiler(interval=0.0001) as profiler:
        for _ in range(inner * 5):
            ours()
    scenario.check()
    profiler.print()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds (default 30)")
    parser.add_argument("--inner", type=int, default=2000, help="calls per round (default 2000)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds (default 3)")
    parser.add_argument("--profile", action="store_true", help="profile stepup with pyinstrument")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.inner)
        return 0
    results = run(args.rounds, args.inner, args.warmup)
    python = sys.version.split()[0]
    print(f"Python {python}, pyotp {version('pyotp')}, stepup {version('stepup')}")
    print(f"{args.rounds} rounds x {args.inner} calls, alternating; medians per call")
    print(header())
    for result in results:
        print(format_row(result))
    headline = results[0].ratio
    verdict = "met" if headline >= TARGET else "MISSED"
    print(f"\ntarget: stepup >= {TARGET:.0f}x faster than pyotp: {verdict} ({headline:.2f}x)")
    return 0 if headline >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
