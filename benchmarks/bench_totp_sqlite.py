"""TOTP verify through the SQLite store against django-otp's ``TOTPDevice.verify_token``.

Both sides keep their state in a SQLite file of their own, in WAL mode with
``synchronous=NORMAL`` (stepup's defaults, given to Django through ``init_command`` so
neither side pays for an fsync the other skips). Django is configured here with a
minimal settings module (``django_otp`` and ``django_otp.plugins.otp_totp``), and its
migrations run on the temporary file. Every user is enrolled beforehand and signed in
once before, so each timed call is a real, accepted verification that moves a stored
last step forward: stepup's atomic claim (one ``BEGIN IMMEDIATE`` transaction), and
django-otp's throttle check, match and ``save()``. Both read the real clock; the code
is refreshed before every round. Every result of both sides is checked.

Rows: the verification with the credential already in hand (``TOTPVerifier.verify``
vs ``device.verify_token``; target: stepup at least 5x faster), and the whole sign-in
step that loads it first (``TwoFactor.verify``, which also opens the AES-GCM sealed
secret, vs ``TOTPDevice.objects.get(...).verify_token``).

    .venv/bin/python benchmarks/bench_totp_sqlite.py [--quick] [--markdown]
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import scale, wall
from harness import compare
from load import BOX, load_sql, users
from report import Row, Target, cli

from stepup.adapters.storage.sql import SQLStore
from stepup.totp import TOTP, decode_secret, generate_secret
from stepup.twofactor import TwoFactor
from stepup.verifier import TOTPVerifier

GROUP = "TOTP verify, SQLite"
TARGET = Target("faster", 5.0)


def configure_django(database: Path) -> None:
    """The smallest Django that runs django-otp's TOTP device on a SQLite file."""
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django_otp",
            "django_otp.plugins.otp_totp",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(database),
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
            }
        },
    )
    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def django_devices(count: int, secret: str) -> list[Any]:
    """``count`` users, each with a confirmed TOTP device on ``secret``, used once before."""
    from django.contrib.auth.models import User
    from django_otp.plugins.otp_totp.models import TOTPDevice

    people = User.objects.bulk_create(
        [User(username=f"u{i:07d}", password="!") for i in range(count)], batch_size=2000
    )
    last_t = int(time.time() // 30) - 100
    TOTPDevice.objects.bulk_create(
        [
            TOTPDevice(
                user=person,
                name="phone",
                confirmed=True,
                key=decode_secret(secret).hex(),
                tolerance=1,
                last_t=last_t,
            )
            for person in people
        ],
        batch_size=2000,
    )
    return list(TOTPDevice.objects.order_by("id"))


def rows(quick: bool) -> list[Row]:
    size = scale(quick, rounds=20, inner=200)
    with tempfile.TemporaryDirectory(prefix="stepup-bench-") as folder:
        configure_django(Path(folder) / "django.sqlite3")
        store = SQLStore.sqlite(Path(folder) / "stepup.sqlite3")
        try:
            return _measure(store, size.calls, size.rounds, size.inner, size.warmup)
        finally:
            store.close()
            from django.db import connections

            connections.close_all()


def _measure(store: SQLStore, calls: int, rounds: int, inner: int, warmup: int) -> list[Row]:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    secret = generate_secret()
    totp = TOTP(secret)
    now = time.time()
    step = int(now // 30)
    enrolled = users(2 * calls, secret, last_step=step - 100, now=now)
    load_sql(store, enrolled)
    devices = django_devices(2 * calls, secret)
    live = [totp.at(time.time())]

    def refresh() -> None:
        live[0] = totp.at(time.time())

    verifier = TOTPVerifier(store, window=1)
    two_factor = TwoFactor(store, box=BOX, window=1)
    ours_results: list[object] = []
    theirs_results: list[object] = []

    def pair(
        ours_call: Callable[[str], object], theirs_call: Callable[[Any], object], half: int
    ) -> tuple[Callable[[], None], Callable[[], None]]:
        ids: Iterator[str] = iter(enrolled.ids[half * calls : (half + 1) * calls])
        theirs_devices: Iterator[Any] = iter(devices[half * calls : (half + 1) * calls])

        def ours() -> None:
            ours_results.append(ours_call(next(ids)))

        def theirs() -> None:
            theirs_results.append(theirs_call(next(theirs_devices)))

        return ours, theirs

    in_hand = pair(
        lambda user_id: verifier.verify(f"totp:{user_id}", totp, live[0]),
        lambda device: device.verify_token(live[0]),
        0,
    )
    loading = pair(
        lambda user_id: two_factor.verify(user_id, live[0]),
        lambda device: TOTPDevice.objects.get(user_id=device.user_id).verify_token(live[0]),
        1,
    )
    results = []
    for label, peer, (ours, theirs) in (
        ("TOTPVerifier.verify, credential in hand", "TOTPDevice.verify_token", in_hand),
        (
            "TwoFactor.verify: load, unseal, verify",
            "TOTPDevice.objects.get().verify_token",
            loading,
        ),
    ):
        results.append(
            compare(
                label,
                ("stepup", ours),
                (peer, theirs),
                rounds=rounds,
                inner=inner,
                warmup=warmup,
                before_round=refresh,
                timer=wall,
            )
        )
    refused = [r for r in ours_results if not getattr(r, "ok", False)]
    assert not refused, f"{len(refused)} stepup verifications were refused: {refused[:3]}"
    assert all(r is True for r in theirs_results), "django-otp refused a valid code"
    assert len(ours_results) == len(theirs_results) == 2 * calls
    return [
        Row.compared(GROUP, results[0].label, results[0], target=TARGET),
        Row.compared(GROUP, results[1].label, results[1], style="speedup"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    return cli(__doc__.splitlines()[0], rows, argv)


if __name__ == "__main__":
    sys.exit(main())
