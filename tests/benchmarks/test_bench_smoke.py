"""Every benchmark still runs and prints its table rows (tiny counts; no timing judged).

Each module runs in a process of its own, as the runner runs it: one of them configures
Django's settings, which a process can do only once. Every benchmark checks inside
itself that each measured call did its real work (accepted verifications, allowed and
denied decisions), so a run that prints its rows also proves that.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support import need, port_open

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"

#: module -> (needs Redis, a label its table must show)
MODULES = {
    "bench_totp_oath": (False, "TOTPVerifier.verify, window 1"),
    "bench_totp_sqlite": (False, "TOTPVerifier.verify, credential in hand"),
    "bench_totp_redis": (True, "RedisStore, TOTPVerifier.verify"),
    "bench_reauth": (True, "allowed (fresh grant)"),
    "bench_tokens": (False, "validate + check_token (RS256)"),
    "bench_passkeys": (False, "finish_authentication (ES256, memory store)"),
    "bench_password": (False, "PasswordReauth.verify"),
    "bench_scaling": (True, "TwoFactor.verify with 1,000 enrolled users"),
    "bench_memory": (False, "per enrolled user"),
}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_benchmark_prints_its_rows(module: str) -> None:
    needs_redis, label = MODULES[module]
    if needs_redis:
        need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    done = _run(str(BENCHMARKS / f"{module}.py"), "--quick")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["benchmark", "stepup", "peer"]
    row = next((line for line in lines if label in line), None)
    assert row is not None, done.stdout
    assert row.rstrip().endswith(("PASS", "MISS", "report")), row


def test_the_whole_request_benchmark_runs_every_framework() -> None:
    """Each server starts, the guarded endpoint refuses a session without a grant and
    answers one with it, and both endpoints answer every request over 16 connections."""
    done = _run(
        str(BENCHMARKS / "bench_requests.py"),
        "--quick",
        "--stores",
        "memory,sqlite",
        "--rounds",
        "1",
        "--requests",
        "16",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for framework in ("Starlette (uvicorn)", "FastAPI (uvicorn)", "Flask (waitress)"):
        for store in ("memory", "sqlite"):
            assert f"{framework}, {store}: guarded vs user loaded" in done.stdout
    assert "Django (waitress), sqlite: guarded vs user loaded" in done.stdout
    assert "req/s, p50" in done.stdout


def test_every_measured_endpoint_is_routed_at_the_same_place_on_average() -> None:
    """Starlette, FastAPI and Django try routes in order: the whole-request benchmark
    serves each endpoint at two mirrored places, so none pays for being listed later."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); import bench_requests as b;"
        "import json; print(json.dumps(b.route_order()))"
    )
    done = _run("-c", code)
    assert done.returncode == 0, done.stderr[-2000:]
    order = json.loads(done.stdout)
    places: dict[str, list[int]] = {}
    for index, (_, endpoint) in enumerate(order):
        places.setdefault(endpoint, []).append(index)
    assert set(places) == {"driver", "user", "guarded"}
    assert {sum(found) / len(found) for found in places.values()} == {2.5}
    assert len({path for path, _ in order}) == len(order)


def test_the_networked_stores_are_also_timed_against_one_bare_round_trip() -> None:
    """Redis and PostgreSQL rows compare the guard with the same endpoint doing one bare
    driver round trip (a GET; a SELECT), async (uvicorn) and sync (waitress) alike."""
    redis_up, postgres_up = port_open("127.0.0.1", 6379), port_open("127.0.0.1", 5432)
    need(redis_up or postgres_up, "Redis at 127.0.0.1:6379 or PostgreSQL at 127.0.0.1:5432")
    done = _run(
        str(BENCHMARKS / "bench_requests.py"),
        "--quick",
        "--only",
        "starlette,flask",
        "--stores",
        "redis,postgresql",
        "--rounds",
        "1",
        "--requests",
        "16",
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for framework in ("Starlette (uvicorn)", "Flask (waitress)"):
        if redis_up:
            assert f"{framework}, redis: guarded vs one GET" in done.stdout
            assert f"{framework}, redis: guarded vs user loaded" in done.stdout
        if postgres_up:
            assert f"{framework}, postgresql: guarded vs one SELECT" in done.stdout


def test_the_capacity_benchmark_measures_both_servers() -> None:
    """``bench_capacity`` (the figures behind docs/capacity.md) runs both operations on
    both servers and charges each some server CPU: a reading of nothing would print 0."""
    need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    done = _run(str(BENCHMARKS / "bench_capacity.py"), "--seconds", "0.2", "--concurrency", "4")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for store in ("PostgreSQL (AsyncSQLStore, asyncpg)", "Redis (AsyncRedisStore)"):
        for operation in ("check", "verify"):
            row = next(
                line.split()
                for line in done.stdout.splitlines()
                if line.startswith(store) and line.split()[-3] == operation
            )
            assert float(row[-2]) > 0, row  # operations per second
            assert float(row[-1]) > 0, row  # server CPU per operation


@pytest.mark.parametrize(
    ("store", "against", "frameworks", "store_functions"),
    [
        ("memory", "user loaded", ["Starlette", "FastAPI", "Flask", "Django"], {"batch"}),
        ("sqlite", "one SELECT", ["Flask", "Django"], {"get_tenant_and_grant", "_execute"}),
    ],
)
def test_the_bytecode_count_finds_the_guard_in_every_framework(
    store: str, against: str, frameworks: list[str], store_functions: set[str]
) -> None:
    """``guard_bytecodes`` (the count behind docs/performance.md) sees each framework's
    guarded request run stepup's decision flow and the store's read beyond the request it
    is judged against, and its figures add up: what stepup's own functions run is most
    of what the guard adds."""
    done = _run(str(BENCHMARKS / "guard_bytecodes.py"), "--store", store)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    headers = re.findall(
        rf"^(\w+) \(.*, {store} store\): {against} ([\d,]+) bytecodes, guarded ([\d,]+):"
        r" the guard adds ([\d,]+)",
        done.stdout,
        re.MULTILINE,
    )
    assert [found[0] for found in headers] == frameworks
    ours = [
        int(n.replace(",", "")) for n in re.findall(r"in stepup's functions: ([\d,]+)", done.stdout)
    ]
    for (_, *counts), own in zip(headers, ours, strict=True):
        before, guarded, added = (int(count.replace(",", "")) for count in counts)
        assert added > 0
        assert abs(guarded - before - added) <= 1  # each a mean of two paths, rounded
        assert added / 2 < own
    functions = {
        function.split()[1]
        for function in re.findall(r"^ +[\d,]+  (\S+ \S+)$", done.stdout, re.MULTILINE)
    }
    assert {"_check", "run", "_after", *store_functions} <= functions


def test_the_bytecode_count_refuses_what_it_cannot_follow() -> None:
    """The async SQL store runs statements in a thread of its own: counting there would
    leave out both sides' reads, so the script says so instead of printing a figure."""
    done = _run(str(BENCHMARKS / "guard_bytecodes.py"), "--store", "sqlite", "--only", "starlette")
    assert done.returncode == 2
    assert "a thread of its own" in done.stderr
    assert "bytecodes" not in done.stdout


def test_the_runner_prints_one_table_and_writes_markdown(tmp_path: Path) -> None:
    need(port_open("127.0.0.1", 6379), "Redis at 127.0.0.1:6379")
    out = tmp_path / "table.md"
    done = _run(
        "-m",
        "benchmarks",
        "--quick",
        "--only",
        "totp,memory,reauth,starlette,flask,django",
        "--markdown",
        str(out),
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for text in ("TOTP verify, memory store", "Re-auth check(), Redis", "Memory, MemoryStore"):
        assert text in done.stdout
    assert "Framework overhead (grant present)" in done.stdout
    assert "failed" not in done.stdout
    markdown = out.read_text(encoding="utf-8")
    assert "| benchmark | stepup | peer |" in markdown
    assert "Command: python -m benchmarks --quick" in markdown
    # The header names the code measured: stepup's own distribution and the commit.
    assert re.search(r"Packages: stepup-auth \d", markdown), markdown[:600]
    assert re.search(r"^- Code: commit [0-9a-f]{7,}", markdown, re.MULTILINE), markdown[:600]


def test_the_runner_lists_and_refuses_unknown_names() -> None:
    listed = _run("benchmarks/run.py", "--list")
    assert listed.returncode == 0
    names = [line.split()[0] for line in listed.stdout.splitlines()]
    assert {"totp", "totp-sqlite", "totp-redis", "reauth", "scaling", "memory", "requests"} <= set(
        names
    )
    unknown = _run("benchmarks/run.py", "--only", "nope")
    assert unknown.returncode != 0
    assert "unknown benchmark" in unknown.stderr
