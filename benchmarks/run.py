"""Run every benchmark and print one table: stepup next to its peer, the ratio, the target.

    .venv/bin/python -m benchmarks                      # everything (several minutes)
    .venv/bin/python -m benchmarks --only totp,reauth   # a subset (see --list)
    .venv/bin/python -m benchmarks --markdown out.md    # also write the table as markdown
    .venv/bin/python -m benchmarks --quick              # tiny counts: proves they run

(``.venv/bin/python benchmarks/run.py`` is the same.) Each benchmark module runs in a
process of its own, so Django's one-time settings, tracemalloc and allocator state
never leak from one into another; inside a module, stepup and its peer are measured
alternately in the same process and run (``harness.compare``). Peers come from
``benchmarks/requirements.txt``, never from stepup's own dependencies. Benchmarks
that need Redis are skipped, with a line saying so, when it cannot be reached
(``STEPUP_BENCH_REDIS``, default ``redis://127.0.0.1:6379/14``).
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import redis_reachable
from report import (
    Row,
    Target,
    environment,
    markdown_table,
    rows_from_json,
    rows_to_json,
    text_table,
)

HERE = Path(__file__).resolve().parent
_MARK = "STEPUP-BENCH-ROWS "


@dataclass(frozen=True)
class Bench:
    name: str
    module: str
    what: str
    redis: bool = False


BENCHES = (
    Bench("totp", "bench_totp", "TOTP verify, memory store, vs pyotp (target >= 2x faster)"),
    Bench("totp-oath", "bench_totp_oath", "TOTP verify, memory store, vs django_otp.oath"),
    Bench("totp-sqlite", "bench_totp_sqlite", "TOTP verify on SQLite vs django-otp (>= 5x)"),
    Bench("totp-redis", "bench_totp_redis", "TOTP verify on Redis vs SET NX EX (<= 1.3x)", True),
    Bench("reauth", "bench_reauth", "check(): memory vs dict (< 10x), Redis vs GET", True),
    Bench("sql-store", "bench_sql_store", "SQL store hot paths vs the driver (PG 1.5x, SQLite 2x)"),
    Bench("tokens", "bench_tokens", "access token validate + decision vs joserfc (<= 1.5x)"),
    Bench("passkeys", "bench_passkeys", "passkey assertion vs python-fido2 (<= 1.3x)"),
    Bench("starlette", "bench_starlette", "protected vs unprotected endpoint (< +10%)"),
    Bench("flask", "bench_flask", "protected vs unprotected view"),
    Bench("django", "bench_django", "protected vs unprotected view"),
    Bench(
        "requests",
        "bench_requests",
        "whole requests, uvicorn/waitress, 16 connections (< +5%; Redis, PostgreSQL vs one"
        " bare round trip: < +10%, <= 1.5x)",
    ),
    Bench("password", "bench_password", "argon2id verify vs OWASP minimum, argon2-cffi"),
    Bench("scaling", "bench_scaling", "verify with 1k, 10k, 100k users, SQLite and Redis", True),
    Bench("memory", "bench_memory", "bytes per enrolled user in the memory store"),
)
_BY_NAME = {bench.name: bench for bench in BENCHES}


# adapters for modules that report harness comparisons rather than rows ----------------


def _totp_rows(module: Any, quick: bool) -> list[Row]:
    rounds, inner, warmup = (2, 5, 1) if quick else (30, 2000, 3)
    results = module.run(rounds, inner, warmup)
    # Reported, not judged (issue 17): the comparison with pyotp is not worth
    # contorting code for; the whole-request rows are judged.
    return [
        Row.compared(
            "TOTP verify, memory store",
            f"TOTPVerifier.{result.label}",
            result,
            style="speedup",
        )
        for result in results
    ]


# Test-client rows are reported; the judged framework figures are whole requests
# through real servers (bench_requests).
_FRAMEWORK_TARGETS: dict[str, Target] = {}
_FRAMEWORK_INNER = {"starlette": 40, "flask": 500, "django": 500}


def _framework_rows(name: str) -> Callable[[Any, bool], list[Row]]:
    def rows(module: Any, quick: bool) -> list[Row]:
        rounds, inner, warmup = (2, 2, 1) if quick else (30, _FRAMEWORK_INNER[name], 3)
        found = module.run(rounds, inner, warmup)
        results = found if isinstance(found, list) else [found]
        per = int(getattr(module, "PER_CALL", 1))
        return [
            Row.compared(
                "Framework overhead (grant present)",
                result.label
                if name in result.label.lower()
                else f"{name.capitalize()}: {result.label}",
                result,
                # The target is on the protected endpoint against an unprotected one,
                # through the framework's test client (raw ASGI rows are reported only).
                target=_FRAMEWORK_TARGETS.get(name)
                if result.ours.name == "protected" and "raw ASGI" not in result.label
                else None,
                per=per,
                style="overhead",
                note="" if per == 1 else f"times per request ({per} requests per timed call).",
            )
            for result in results
        ]

    return rows


_ADAPTERS: dict[str, Callable[[Any, bool], list[Row]]] = {
    "totp": _totp_rows,
    **{name: _framework_rows(name) for name in ("starlette", "flask", "django")},
}


def child(name: str, quick: bool) -> int:
    """Run one benchmark in this process and print its rows for the parent."""
    bench = _BY_NAME[name]
    module = importlib.import_module(bench.module)
    adapter = _ADAPTERS.get(name)
    rows = adapter(module, quick) if adapter else module.rows(quick)
    print(_MARK + rows_to_json(rows), flush=True)
    return 0


# the parent ------------------------------------------------------------------------


def _select(only: str | None, skip: str | None) -> list[Bench]:
    names = [name.strip() for name in only.split(",")] if only else [b.name for b in BENCHES]
    unknown = [name for name in names if name not in _BY_NAME]
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)} (see --list)")
    skipped = {name.strip() for name in skip.split(",")} if skip else set()
    return [_BY_NAME[name] for name in names if name not in skipped]


def _run_child(bench: Bench, quick: bool) -> tuple[list[Row], str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", bench.name]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_MARK):
            return rows_from_json(line[len(_MARK) :]), ""
    tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
    return [], f"{bench.name}: failed (exit {done.returncode}): " + " | ".join(tail)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run stepup's benchmarks against their peers and print one table.",
    )
    parser.add_argument("--only", help="comma-separated benchmarks to run (see --list)")
    parser.add_argument("--skip", help="comma-separated benchmarks to leave out")
    parser.add_argument("--quick", action="store_true", help="tiny counts, to check they run")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as markdown")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.quick)
    if args.list:
        for bench in BENCHES:
            present = (HERE / f"{bench.module}.py").exists()
            print(f"{bench.name:<12} {bench.what}{'' if present else '  (module absent)'}")
        return 0

    selected = _select(args.only, args.skip)
    has_redis = redis_reachable()
    rows: list[Row] = []
    problems: list[str] = []
    started = time.monotonic()
    for bench in selected:
        if not (HERE / f"{bench.module}.py").exists():
            problems.append(f"{bench.name}: skipped, benchmarks/{bench.module}.py is absent")
            continue
        if bench.redis and not has_redis:
            problems.append(f"{bench.name}: skipped, Redis is unreachable")
            continue
        print(f"running {bench.name} ...", file=sys.stderr, flush=True)
        found, problem = _run_child(bench, args.quick)
        rows.extend(found)
        if problem:
            problems.append(problem)
    elapsed = time.monotonic() - started

    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    header = [*environment(), f"Command: {command.strip()} ({elapsed:.0f} s)"]
    print("\n".join(header) + "\n")
    print(text_table(rows))
    for problem in problems:
        print(problem)
    if args.markdown:
        lines = [f"- {line}" for line in header]
        text = "\n".join(lines) + "\n\n" + markdown_table(rows) + "\n"
        if problems:
            text += "\n" + "\n".join(f"- {problem}" for problem in problems) + "\n"
        Path(args.markdown).write_text(text, encoding="utf-8")
    missed = [row for row in rows if row.verdict == "MISS"]
    failed = any("failed" in problem for problem in problems)
    return 1 if failed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
