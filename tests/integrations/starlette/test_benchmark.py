"""The Starlette benchmark still runs, and measures allowed checks (no timing asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    _load("harness")
    bench = _load("bench_starlette")
    assert bench.main(["--rounds", "2", "--inner", "2", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "overhead vs open:" in out
    assert "overhead vs open+user:" in out
    assert "Starlette TestClient: protected vs open" in out
    assert "Starlette raw ASGI: protected vs open" in out


def test_every_measured_call_is_an_allowed_200() -> None:
    _load("harness")
    bench = _load("bench_starlette")
    asgi, through_client, loop, client = bench.scenario()  # asserts a fresh grant, a 303 without
    try:
        assert set(asgi) == set(through_client) == {"protected", "open", "open+user"}
        for call in [*asgi.values(), *through_client.values()]:
            call()  # asserts 200 on each of its requests
    finally:
        client.__exit__(None, None, None)
        loop.close()
