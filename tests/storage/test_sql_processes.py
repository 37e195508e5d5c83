"""Atomic across processes: four interpreters race on one SQLite file, then on PostgreSQL.

Each process opens its own store, says it is ready, waits for "go", then:
claims step 42 on the same keys in its own shuffled order (exactly one process wins
each key); claims steps 1..N in order on one hot key (exactly one process wins each
step: a lost update would let two win); charges one shared throttle key (no charge
may be lost); patches flags of its own into one shared tenant (no flag may be lost).

Every race is checked in full. Whether the processes really ran at the same time is up
to the OS scheduler (on a busy two-core machine one process can finish its 100 keys
before another starts), so a race in which one process won every key is run again,
up to a few times: the test fails if the processes never overlapped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from stepup.adapters.storage.sql import SQLStore
from stepup.records import Tenant
from support import POSTGRES_URL, need, port_open

PROCESSES = 4
KEYS = 1000  # long enough that four processes started one after another still overlap
STEPS = 100
CHARGES = 50
PATCHES = 25

WORKER = """
import json, random, sys
from stepup.adapters.storage.sql import SQLStore
from stepup.records import AttemptOutcome
from stepup.throttle import ThrottlePolicy

url, prefix, tag, keys, steps, charges, patches, seed = sys.argv[1:9]
policy = ThrottlePolicy(free_failures=10**6, base_delay=1.0, max_delay=1.0, forget_after=3600)
store = SQLStore(url, prefix=prefix)
store.throttle_state("warm-up")  # connect before the start line
print("ready", flush=True)
sys.stdin.readline()
order = list(range(int(keys)))
random.Random(int(seed)).shuffle(order)
keys_won = []
for i in order:
    attempt = store.totp_attempt(f"{tag}-{i}", 42, 1e9, policy)
    if attempt.outcome is AttemptOutcome.ACCEPTED:
        keys_won.append(i)
steps_won = []
for step in range(1, int(steps) + 1):
    attempt = store.totp_attempt(f"{tag}-hot", step, 1e9, policy)
    if attempt.outcome is AttemptOutcome.ACCEPTED:
        steps_won.append(step)
for _ in range(int(charges)):
    store.throttle_charge(f"{tag}-charged", 1e9, policy)
for i in range(int(patches)):
    store.patch_tenant(tag, {}, {f"p{seed}-{i}": True})
store.close()
print(json.dumps({"keys": keys_won, "steps": steps_won}), flush=True)
"""


TRIES = 5


def race_until_overlap(url: str, prefix: str) -> None:
    """Race, checking every race in full, until one shows the processes overlapping."""
    for _ in range(TRIES):
        if race(url, prefix):
            return
    pytest.fail(f"the processes did not overlap in {TRIES} races")


def race(url: str, prefix: str) -> bool:
    """One race, checked; ``True`` when more than one process won keys (they overlapped)."""
    tag = uuid.uuid4().hex
    args = [url, prefix, tag, str(KEYS), str(STEPS), str(CHARGES), str(PATCHES)]
    with SQLStore(url, prefix=prefix) as store:
        store.put_tenant(Tenant(tag, {"feature_flags": {}}))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, *args, str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [worker.returncode for worker in workers] == [0] * PROCESSES
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    keys_won = sorted(i for result in results for i in result["keys"])
    assert keys_won == list(range(KEYS)), "each key is won exactly once"
    steps_won = sorted(step for result in results for step in result["steps"])
    assert steps_won == list(range(1, STEPS + 1)), "each step of the hot key is won exactly once"

    with SQLStore(url, prefix=prefix) as store:
        assert store.throttle_state(f"{tag}-charged").failures == PROCESSES * CHARGES
        assert store.throttle_state(f"{tag}-0").last_step == 42
        assert store.throttle_state(f"{tag}-hot").last_step == STEPS
        tenant = store.get_tenant(tag)
        assert tenant is not None
        assert sorted(tenant.feature_flags) == sorted(
            f"p{seed}-{i}" for seed in range(PROCESSES) for i in range(PATCHES)
        ), "every process's patches are kept"
    return sum(1 for result in results if result["keys"]) > 1


def test_processes_race_on_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    SQLStore.sqlite(path).close()
    race_until_overlap(f"sqlite:///{path}", "stepup_")


@pytest.mark.postgres
def test_processes_race_on_postgres() -> None:
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    store = SQLStore(POSTGRES_URL, prefix=prefix)
    store.create_schema()
    try:
        race_until_overlap(POSTGRES_URL, prefix)
    finally:
        store.drop_schema()
        store.close()
