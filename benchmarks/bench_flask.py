"""The cost of a protected Flask view against an unprotected one, in the same app and run.

Both views return the same small JSON body through Flask's test client, for a signed-in
user of a tenant with ``sensitive_actions_reauth`` on. The protected one is behind
``@stepup.reauth_required("api_key.read")`` and the user holds a fresh grant, so every
call is a full, allowed check: subject from the session, tenant, policy rule, tenant
and grant from the memory store. Every response is checked to be a 200.

    .venv/bin/python benchmarks/bench_flask.py [--rounds 30] [--inner 500]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from flask import Flask, session

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Comparison, compare

from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.flask import Stepup
from stepup.reauth import Allowed, AllowReason
from stepup.subject import Subject
from stepup.testing import SettableClock

TENANT = "acme"
FLAG_ON = {"feature_flags": {"sensitive_actions_reauth": True}}


def build() -> tuple[Flask, Stepup]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="bench-secret-key-0123456789", TESTING=True)
    stepup = Stepup(store=MemoryStore(), clock=SettableClock())

    @stepup.subject_loader
    def subject() -> Subject | None:
        user_id = session.get("user_id")
        return Subject(user_id, stepup.session_id()) if user_id else None

    @stepup.tenant_loader
    def tenant(subject: Subject) -> str:
        return TENANT

    @app.get("/open")
    def unprotected() -> dict[str, str]:
        return {"api_key": "key-123"}

    @app.get("/protected")
    @stepup.reauth_required("api_key.read")
    def protected() -> dict[str, str]:
        return {"api_key": "key-123"}

    stepup.init_app(app)
    with app.app_context():
        stepup.tenant_settings.ensure(TENANT, FLAG_ON)
    return app, stepup


def scenario() -> tuple[Callable[[], object], Callable[[], object]]:
    app, stepup = build()
    client = app.test_client()
    with client.session_transaction() as saved:
        saved["user_id"] = "bob"
        saved["_stepup_sid"] = "bench-session"
    with app.test_request_context():
        stepup.reauth.record(Subject("bob", "bench-session"), ["pwd"])
        decision = stepup.reauth.check(Subject("bob", "bench-session"), "api_key.read", TENANT)
    assert isinstance(decision, Allowed), decision
    assert decision.reason is AllowReason.FRESH_GRANT, decision

    def call(path: str) -> Callable[[], Any]:
        def get() -> Any:
            response = client.get(path)
            assert response.status_code == 200, response.status_code
            return response

        return get

    # Without a grant the protected view must refuse: the benchmark measures a real check.
    other = app.test_client()
    with other.session_transaction() as saved:
        saved["user_id"] = "mallory"
    assert other.get("/protected").status_code == 303
    return call("/protected"), call("/open")


def run(rounds: int, inner: int, warmup: int = 3) -> Comparison:
    protected, unprotected = scenario()
    return compare(
        "Flask test client: protected vs unprotected view",
        ("protected", protected),
        ("unprotected", unprotected),
        rounds=rounds,
        inner=inner,
        warmup=warmup,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds (default 30)")
    parser.add_argument("--inner", type=int, default=500, help="requests per round (default 500)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds (default 3)")
    args = parser.parse_args(argv)
    result = run(args.rounds, args.inner, args.warmup)
    ours, theirs = result.ours, result.theirs
    overhead = ours.median / theirs.median - 1
    print(f"Python {sys.version.split()[0]}, Flask {version('flask')}")
    print(f"{args.rounds} rounds x {args.inner} requests, alternating; medians per request")
    print(f"{'endpoint':<14} {'median µs':>10} {'IQR µs':>8}")
    for stats in (theirs, ours):
        print(f"{stats.name:<14} {stats.median * 1e6:10.1f} {stats.iqr * 1e6:8.1f}")
    added = (ours.median - theirs.median) * 1e6
    print(f"\nprotected view overhead: {overhead:+.1%} ({added:+.1f} µs per request)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
