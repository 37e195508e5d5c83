"""The examples' development sealing key, made by processes starting at once (test
workers, a server's workers): every one reads the same whole key. The file was created
empty and written afterwards, so a process starting meanwhile read an empty key (the
app stopped: "STEPUP_ENCRYPTION_KEY must be 32 bytes") or made another."""

from __future__ import annotations

import importlib.util
import multiprocessing
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
WORKERS = 8


#: The example's dev_sealing_key, loaded in the parent: forked workers inherit it.
_MAKE: list[Callable[[Path], str]] = []


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the example look their module up
    spec.loader.exec_module(module)
    return module


def _start(path: str, barrier: Any) -> str:
    barrier.wait()
    return _MAKE[0](Path(path))


@pytest.mark.parametrize("name", ["flask_app", "starlette_app", "fastapi_app"])
def test_workers_starting_at_once_share_one_whole_key(name: str, tmp_path: Path) -> None:
    _MAKE[:] = [_example(name).dev_sealing_key]
    context = multiprocessing.get_context("fork")
    for attempt in range(10):
        path = tmp_path / f"stepup-dev-{attempt}.key"
        with context.Manager() as manager:
            barrier = manager.Barrier(WORKERS)
            with context.Pool(WORKERS) as pool:
                keys = pool.starmap(_start, [(str(path), barrier)] * WORKERS)
        assert len(set(keys)) == 1
        assert len(keys[0]) == 43  # 32 bytes of urlsafe base64, unpadded
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
