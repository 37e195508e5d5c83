"""The Django benchmark still runs, and measures allowed checks (no timing asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.testing import SettableClock

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
    bench = _load("bench_django")
    assert bench.main(["--rounds", "2", "--inner", "2", "--warmup", "1"]) == 0
    out = capsys.readouterr().out
    assert "protected vs unprotected + session" in out


def test_every_measured_call_is_an_allowed_200() -> None:
    _load("harness")
    bench = _load("bench_django")
    with bench.project(MemoryStore(), SettableClock()):
        calls = bench.scenario()  # asserts a fresh grant, and a 303 without one
        for call in calls.values():
            call()  # asserts a 200
