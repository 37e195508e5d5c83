"""How many Python bytecodes stepup's guard adds to one whole request: the count behind
docs/performance.md ("Why these rows miss, and why they stay as they are").

Inside a request a bytecode costs about three times what it costs in a loop of its own
(a loop trains the branch predictor CPython's dispatch leans on; a request does not),
so the count, not a tight loop's time, says what the guard costs users. For each
framework, the app of ``bench_requests.py`` answers one request at the guarded endpoint
(a fresh grant: a full, allowed check) and one at the endpoint it is judged against
there: on the memory store the one that loads the signed-in user, on SQLite (Flask and
Django) the one that also runs one bare ``SELECT``. Each is asked at both of its
mirrored paths, traced with ``sys.settrace`` opcode events. Printed: both totals (the
mean of the two paths), and the bytecodes of each stepup function the guarded request
runs beyond the other.

    .venv/bin/python benchmarks/guard_bytecodes.py [--only starlette,flask] [--store sqlite]

The counts are exact and the same on every run of the same code and libraries. Each
framework runs in a process of its own (Django configures its settings once per
process). Not part of ``python -m benchmarks``: no peer, no target, no clock.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_requests
from bench_requests import FRAMEWORKS, MIRROR, SERVERS, framework_label
from bench_starlette import get_scope

#: ``(file, function)`` -> bytecodes run; files inside the stepup package are named
#: from it (``stepup/reauth.py``).
Counts = collections.Counter[tuple[str, str]]
#: Serves one GET of a path (with its query), counting into the counter if given.
Serve = Callable[[str, "Counts | None"], None]
#: The frameworks whose SQL store runs its statements in the request's own thread.
SYNC_FRAMEWORKS = ("flask", "django")
ASYNC_SQL = (
    ": the async SQL store on SQLite, like aiosqlite, runs statements in a thread of its own,"
    " which sys.settrace does not follow, so the count would leave out both sides' reads"
)
#: store -> (the endpoint the guarded one is judged against, its name in the report)
BASELINES = {"memory": ("user", "user loaded"), "sqlite": ("driver", "one SELECT")}


@contextmanager
def _counting(counts: Counts | None) -> Iterator[None]:
    """Count into ``counts`` the bytecodes of every function called inside the block
    (the caller's own frame is not traced); nothing when ``counts`` is None."""
    if counts is None:
        yield
        return

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            counts[(_where(code.co_filename), code.co_name)] += 1
        return trace

    sys.settrace(trace)
    try:
        yield
    finally:
        sys.settrace(None)


def _where(filename: str) -> str:
    marker = "/stepup/"
    at = filename.rfind(marker)
    return "stepup/" + filename[at + len(marker) :] if at >= 0 else filename


# One request, straight into the app: only the app's own work is counted (no client, no
# server, no event loop) ------------------------------------------------------------------


def _asgi(app: Any) -> Serve:
    cookies: dict[str, str] = {}

    loop = asyncio.new_event_loop()

    def serve(path: str, counts: Counts | None) -> None:
        scope = get_scope(path, _cookie(cookies).encode())
        status: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                for name, value in message["headers"]:
                    if name == b"set-cookie":
                        _keep(cookies, value.decode())

        async def call() -> None:
            with _counting(counts):
                await app(scope, receive, send)

        loop.run_until_complete(call())
        _answered(path, status)

    return serve


def _wsgi(app: Any) -> Serve:
    from werkzeug.test import EnvironBuilder

    cookies: dict[str, str] = {}

    def serve(path: str, counts: Counts | None) -> None:
        target, _, query = path.partition("?")
        headers = {"Host": "localhost"}
        if cookies:
            headers["Cookie"] = _cookie(cookies)
        environ = EnvironBuilder(path=target, query_string=query, headers=headers).get_environ()
        status: list[int] = []

        def start_response(line: str, sent: list[tuple[str, str]], *_: Any) -> Any:
            status.append(int(line.split()[0]))
            for name, value in sent:
                if name.lower() == "set-cookie":
                    _keep(cookies, value)
            return lambda data: None

        with _counting(counts):
            body = app(environ, start_response)
            try:
                b"".join(body)
            finally:
                getattr(body, "close", lambda: None)()
        _answered(path, status)

    return serve


def _cookie(cookies: dict[str, str]) -> str:
    """The ``Cookie`` header that sends back what the app set."""
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


def _keep(cookies: dict[str, str], header: str) -> None:
    for name, morsel in SimpleCookie(header).items():
        cookies[name] = morsel.value


def _answered(path: str, status: list[int]) -> None:
    if status != [200]:
        raise SystemExit(f"{path} answered {status}, not 200: the count would be of a refusal")


def _app(framework: str, store: str, workdir: str) -> Serve:
    bench_requests._prepare_store(store, workdir)
    if framework in ("starlette", "fastapi"):
        return _asgi(bench_requests.starlette_app(store, workdir, framework == "fastapi"))
    if framework == "flask":
        return _wsgi(bench_requests.flask_app(store, workdir))
    return _wsgi(bench_requests.django_app(store, workdir))


def _count(serve: Serve, path: str) -> Counts:
    serve(path, None)  # warm: imports, caches and lazy set-up are not the guard's cost
    counts: Counts = collections.Counter()
    serve(path, counts)
    return counts


def measure(framework: str, store: str) -> str:
    """The report of one framework (run in a process of its own)."""
    baseline, against = BASELINES[store]
    with tempfile.TemporaryDirectory() as workdir:
        serve = _app(framework, store, workdir)
        serve("/sign-in?user=alice&grant=1", None)
        runs = {
            name: [_count(serve, f"/{name}"), _count(serve, f"/{name}{MIRROR}")]
            for name in (baseline, "guarded")
        }
    before, guarded = (
        sum(sum(counts.values()) for counts in runs[name]) / 2 for name in (baseline, "guarded")
    )
    added = guarded - before
    label = f"{framework_label(framework)} ({SERVERS[framework]} app, {store} store)"
    lines = [
        f"{label}: {against} {before:,.0f} bytecodes, guarded {guarded:,.0f}:"
        f" the guard adds {added:,.0f} ({added / before:+.1%})"
    ]
    # Per function, the first path of each: where a route is listed moves only the
    # framework's routing, never a stepup function.
    beyond: Counts = collections.Counter()
    for key, value in runs["guarded"][0].items():
        if key[0].startswith("stepup/"):
            beyond[key] += value - runs[baseline][0][key]
    ours = sum(value for value in beyond.values() if value > 0)
    lines.append(f"  in stepup's functions: {ours:,} (each function's own bytecodes)")
    for (where, function), value in beyond.most_common():
        if value > 0:
            lines.append(f"  {value:6,}  {where} {function}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="frameworks, comma-separated (default: all that apply)")
    parser.add_argument("--store", choices=sorted(BASELINES), default="memory")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one framework, in this process
    args = parser.parse_args(argv)
    if args.one:
        print(measure(args.one, args.store), flush=True)
        return 0
    usable = FRAMEWORKS if args.store == "memory" else SYNC_FRAMEWORKS
    frameworks = [name.strip() for name in (args.only or ",".join(usable)).split(",")]
    unknown = sorted(set(frameworks) - set(usable))
    if unknown:
        parser.error(
            f"cannot count {', '.join(unknown)} on the {args.store} store"
            f" (can: {', '.join(usable)})" + (ASYNC_SQL if args.store != "memory" else "")
        )
    for framework in frameworks:
        done = subprocess.run(
            [sys.executable, __file__, "--one", framework, "--store", args.store],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return done.returncode
        print(done.stdout.rstrip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
