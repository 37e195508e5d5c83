"""The SQL store benchmark still runs and prints every row (tiny counts; no timing judged).

Each row's calls are checked inside the benchmark (accepted, rejected, allowed and
required decisions; the driver's row counts), so a run that prints them proves the
measured calls did their work.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import need, port_open

ROOT = Path(__file__).resolve().parents[2]
LABELS = (
    "verify, accepted code",
    "verify, wrong code",
    "verify, first-ever claim",
    "check, allowed (fresh grant)",
    "check, required (no grant)",
)


def test_every_sql_store_row_is_printed() -> None:
    need(port_open("127.0.0.1", 5432), "PostgreSQL at 127.0.0.1:5432")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_sql_store.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    groups = ("SQLite (sync)", "SQLite (async)", "PostgreSQL (sync", "PostgreSQL (async")
    lines = done.stdout.splitlines()
    for group in groups:
        start = next(i for i, line in enumerate(lines) if group in line)
        block = lines[start + 1 : start + 1 + len(LABELS)]
        for label, line in zip(LABELS, block, strict=True):
            assert label in line, (group, label, done.stdout)
            assert line.rstrip().endswith(("PASS", "MISS")), line
