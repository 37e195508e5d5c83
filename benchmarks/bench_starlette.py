"""The cost of a protected Starlette endpoint against an unprotected one, same app and run.

All endpoints return the same small JSON body for a signed-in user of a tenant with
``sensitive_actions_reauth`` on, through the whole app: ``SessionMiddleware`` (the
subject comes from the signed session cookie), ``StepupMiddleware``, routing. The
protected one is behind ``@stepup.requires_reauth("api_key.read")`` and the session
holds a fresh grant, so every call is a full, allowed check (subject, tenant, policy
rule, tenant flag and grant from the memory store). One route dispatches to all
endpoints, so routing costs each the same. Every response is checked to be a 200.

Two baselines: ``open`` does nothing but answer; ``open+user`` also loads the signed-in
user through the same ``subject_loader``, as any endpoint that shows a user their own
data must (so the difference is what stepup adds on top of knowing who is asking).

Two ways in, 50 requests per timed call each:

- **TestClient**: Starlette's own test client, as issue #8 asks of every framework
  (Flask's and Django's benchmarks use theirs). It is the judged figure.
- **raw ASGI**: plain ASGI calls in one event loop, so no HTTP client or thread hop
  hides anything: the strictest figure, everything stepup adds against the bare
  framework. Reported, not judged (see docs/performance.md for where those
  microseconds go).

    .venv/bin/python benchmarks/bench_starlette.py [--rounds 30] [--inner 40]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Comparison, compare

from stepup.adapters.storage.memory import MemoryStore
from stepup.integrations.starlette import Stepup
from stepup.reauth import Allowed, AllowReason
from stepup.subject import Subject

TENANT = "acme"
FLAG_ON = {"feature_flags": {"sensitive_actions_reauth": True}}
SECRET = "bench-secret-key-0123456789"
PER_CALL = 50  # requests per timed call, so the event loop's own start-up cost vanishes


def build() -> tuple[Starlette, Stepup]:
    def subject(request: Request) -> Subject | None:
        user_id = request.session.get("user")
        return Subject(user_id, request.session["sid"]) if user_id else None

    stepup = Stepup(
        store=MemoryStore(),
        secret_key=SECRET,
        subject_loader=subject,
        tenant_loader=lambda request: TENANT,
    )

    async def sign_in(request: Request) -> Response:
        request.session.update(user=request.query_params["user"], sid="bench-session")
        return JSONResponse({})

    async def unprotected(request: Request) -> Response:
        return JSONResponse({"api_key": "key-123"})

    async def unprotected_user(request: Request) -> Response:
        assert subject(request) is not None
        return JSONResponse({"api_key": "key-123"})

    @stepup.requires_reauth("api_key.read")
    async def protected(request: Request) -> Response:
        return JSONResponse({"api_key": "key-123"})

    # One route serves all three, so routing costs each the same (Starlette tries routes
    # in order: separate routes would charge the later ones for the earlier ones).
    endpoints = {"open": unprotected, "open-user": unprotected_user, "protected": protected}

    async def endpoint(request: Request) -> Response:
        response: Response = await endpoints[request.path_params["name"]](request)
        return response

    app = Starlette(
        routes=[Route("/sign-in", sign_in), Route("/{name}", endpoint)],
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET)],
    )
    stepup.install(app)
    return app, stepup


def get_scope(path: str, cookie: bytes = b"") -> dict[str, Any]:
    """The ASGI scope of a ``GET`` of ``path`` (with its query), sending ``cookie``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.split("?")[0],
        "raw_path": path.split("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), (b"cookie", cookie)] if cookie else [(b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }


async def request(app: Starlette, path: str, cookie: bytes = b"") -> tuple[int, list[Any]]:
    scope = get_scope(path, cookie)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    return start["status"], start.get("headers", [])


async def sign_in(app: Starlette, user: str) -> bytes:
    _, headers = await request(app, f"/sign-in?user={user}")
    set_cookie = next(value for name, value in headers if name == b"set-cookie")
    return set_cookie.split(b";")[0]


Endpoints = dict[str, Callable[[], object]]


def scenario() -> tuple[Endpoints, Endpoints, asyncio.AbstractEventLoop, TestClient]:
    """Calls of each endpoint, 50 requests each: as raw ASGI calls, and through
    Starlette's TestClient."""
    app, stepup = build()
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    run(stepup.tenants.ensure(TENANT, FLAG_ON))
    bob = run(sign_in(app, "bob"))
    subject = Subject("bob", "bench-session")
    run(stepup.reauth.record(subject, ["pwd"]))
    decision = run(stepup.reauth.check(subject, "api_key.read", TENANT))
    assert isinstance(decision, Allowed), decision
    assert decision.reason is AllowReason.FRESH_GRANT, decision
    # Without a grant the protected endpoint must refuse: we measure a real check.
    mallory = run(sign_in(app, "mallory"))
    assert run(request(app, "/protected", mallory))[0] == 303

    def asgi_calls(path: str) -> Callable[[], object]:
        async def many() -> None:
            for _ in range(PER_CALL):
                status, _ = await request(app, path, bob)
                assert status == 200, status

        return lambda: run(many())

    client = TestClient(app, base_url="http://bench")
    client.__enter__()  # one portal (event loop thread) for the whole run
    assert client.get("/sign-in", params={"user": "bob"}).status_code == 200
    assert client.get("/protected", follow_redirects=False).status_code == 200

    def client_calls(path: str) -> Callable[[], object]:
        get = client.get

        def many() -> None:
            for _ in range(PER_CALL):
                status = get(path).status_code
                assert status == 200, status

        return many

    paths = {"protected": "/protected", "open": "/open", "open+user": "/open-user"}
    asgi = {name: asgi_calls(path) for name, path in paths.items()}
    through_client = {name: client_calls(path) for name, path in paths.items()}
    return asgi, through_client, loop, client


def run(rounds: int, inner: int, warmup: int = 3) -> list[Comparison]:
    asgi, through_client, loop, client = scenario()
    # A TestClient request costs about ten raw ones: fewer calls give rounds as long.
    ways = (("TestClient", through_client, max(1, inner // 10)), ("raw ASGI", asgi, inner))
    try:
        return [
            compare(
                f"Starlette {way}: protected vs {baseline}",
                ("protected", endpoints["protected"]),
                (baseline, endpoints[baseline]),
                rounds=rounds,
                inner=calls,
                warmup=warmup,
            )
            for way, endpoints, calls in ways
            for baseline in ("open", "open+user")
        ]
    finally:
        client.__exit__(None, None, None)
        loop.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds (default 30)")
    parser.add_argument(
        "--inner", type=int, default=40, help=f"timed calls per round, {PER_CALL} requests each"
    )
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds (default 3)")
    args = parser.parse_args(argv)
    print(f"Python {sys.version.split()[0]}, Starlette {version('starlette')}")
    print(
        f"{args.rounds} rounds x {args.inner * PER_CALL} requests per endpoint, alternating;"
        " medians per request"
    )
    for result in run(args.rounds, args.inner, args.warmup):
        ours, theirs = result.ours, result.theirs
        print(f"\n{result.label}")
        print(f"{'endpoint':<14} {'median µs':>10} {'IQR µs':>8}")
        for stats in (theirs, ours):
            median, iqr = stats.median / PER_CALL * 1e6, stats.iqr / PER_CALL * 1e6
            print(f"{stats.name:<14} {median:10.1f} {iqr:8.1f}")
        overhead = ours.median / theirs.median - 1
        added = (ours.median - theirs.median) / PER_CALL * 1e6
        print(f"overhead vs {theirs.name}: {overhead:+.1%} ({added:+.1f} µs per request)")
    print("\ntarget: under +10% (judged on the TestClient figures, as issue #8 asks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
