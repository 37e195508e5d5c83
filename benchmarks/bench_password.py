"""Password re-authentication: the argon2id verify stepup uses, in milliseconds.

This one is meant to be slow: it is the work factor that makes a stolen hash costly
to crack. It is reported, not optimised, against two reference profiles, each
verified alternately in the same run:

* OWASP's minimum for argon2id (Password Storage Cheat Sheet): m=19 MiB, t=2, p=1;
* argon2-cffi's default profile (``argon2.profiles.RFC_9106_LOW_MEMORY``).

stepup's side is the whole ``PasswordReauth.verify``: the throttle charge, argon2id
with ``PASSWORD_PARAMETERS``, the throttle clear and the result, on the memory store.
Every call is checked to succeed. Wall-clock time: argon2 with p > 1 works in several
threads, which a CPU clock of the calling thread would leave out.

    .venv/bin/python benchmarks/bench_password.py [--quick] [--markdown]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from argon2 import Parameters, PasswordHasher, Type
from argon2.profiles import RFC_9106_LOW_MEMORY
from common import scale, wall
from harness import compare
from report import Row, cli

from stepup.adapters.idp.password import PASSWORD_PARAMETERS, PasswordReauth, hash_password
from stepup.adapters.storage.memory import MemoryStore

GROUP = "Password re-auth (argon2id)"
PASSWORD = "correct horse battery staple"
OWASP_MINIMUM = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=2,
    memory_cost=19 * 1024,
    parallelism=1,
)


def describe(parameters: Parameters) -> str:
    return (
        f"m={parameters.memory_cost // 1024} MiB, t={parameters.time_cost},"
        f" p={parameters.parallelism}"
    )


def rows(quick: bool) -> list[Row]:
    size = scale(quick, rounds=10, inner=3, warmup=1)
    stored = hash_password(PASSWORD)
    reauth = PasswordReauth(MemoryStore())
    results: list[object] = []

    def ours() -> None:
        results.append(reauth.verify("alice", PASSWORD, stored))

    found = []
    for name, parameters in (
        ("OWASP minimum", OWASP_MINIMUM),
        ("argon2-cffi default", RFC_9106_LOW_MEMORY),
    ):
        hasher = PasswordHasher.from_parameters(parameters)
        reference = hasher.hash(PASSWORD)
        theirs_results: list[bool] = []

        def theirs(
            hasher: PasswordHasher = hasher,
            reference: str = reference,
            sink: list[bool] = theirs_results,
        ) -> None:
            sink.append(hasher.verify(reference, PASSWORD))

        result = compare(
            name,
            ("stepup", ours),
            (f"{name} ({describe(parameters)})", theirs),
            rounds=size.rounds,
            inner=size.inner,
            warmup=size.warmup,
            timer=wall,
        )
        assert all(theirs_results), "argon2 refused the right password"
        found.append(
            Row.compared(
                GROUP,
                f"PasswordReauth.verify ({describe(PASSWORD_PARAMETERS)}) vs {name}",
                result,
                note="reported, not a target: slower than the floor is the point."
                if name == "OWASP minimum"
                else "",
            )
        )
    refused = [r for r in results if not getattr(r, "ok", False)]
    assert not refused, f"{len(refused)} password re-authentications failed: {refused[:3]}"
    return found


def main(argv: Sequence[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], rows, argv)


if __name__ == "__main__":
    sys.exit(main())
