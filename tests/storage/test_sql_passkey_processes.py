"""Passkeys atomic across processes: four interpreters race on one SQLite file, then on
PostgreSQL, where the contract suite's threads share one process (and, on SQLite, the
store's in-process lock).

Each process opens its own store, says it is ready, waits for "go", then: registers the
same credential ids, in its own shuffled order, each for a user of its own (exactly one
process may win each id); registers ids of its own for one shared user whose limit is
``LIMIT`` (exactly ``LIMIT`` may be stored in all); and records uses 1..N of one shared
passkey, each expecting the count before it (exactly one process wins each use).

As in test_sql_processes.py, a race in which one process won every id is run again,
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
from stepup.records import Passkey
from support import POSTGRES_URL, need, port_open

PROCESSES = 4
IDS = 60
EACH = 10
LIMIT = 5
USES = 60
TRIES = 5

WORKER = """
import json, random, sys
from dataclasses import replace
from stepup.adapters.storage.sql import SQLStore
from stepup.records import Passkey

url, prefix, tag, ids, each, limit, uses, seed = sys.argv[1:9]
store = SQLStore(url, prefix=prefix)
store.list_passkeys("warm-up")  # connect before the start line
print("ready", flush=True)
sys.stdin.readline()
order = list(range(int(ids)))
random.Random(int(seed)).shuffle(order)
ids_won = []
for i in order:
    passkey = Passkey(f"{tag}-user-{seed}", f"{tag}-cred-{i}", "key", "Key", created_at=1.0)
    if store.add_passkey(passkey, 10**6):
        ids_won.append(i)
shared_won = 0
for i in range(int(each)):
    passkey = Passkey(f"{tag}-shared", f"{tag}-own-{seed}-{i}", "key", "Key", created_at=1.0)
    shared_won += store.add_passkey(passkey, int(limit))
used = Passkey(f"{tag}-used", f"{tag}-used", "key", "Key", created_at=1.0)
uses_won = []
for count in range(1, int(uses) + 1):
    if store.record_passkey_use(replace(used, sign_count=count, last_used_at=float(seed)), count - 1):
        uses_won.append(count)
store.close()
print(json.dumps({"ids": ids_won, "shared": shared_won, "uses": uses_won}), flush=True)
"""


def race_until_overlap(url: str, prefix: str) -> None:
    for _ in range(TRIES):
        if race(url, prefix):
            return
    pytest.fail(f"the processes did not overlap in {TRIES} races")


def race(url: str, prefix: str) -> bool:
    """One race, checked in full; ``True`` when more than one process won ids."""
    tag = uuid.uuid4().hex
    args = [url, prefix, tag, str(IDS), str(EACH), str(LIMIT), str(USES)]
    with SQLStore(url, prefix=prefix) as store:
        assert store.add_passkey(Passkey(f"{tag}-used", f"{tag}-used", "key", "Key"), 1)
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
    assert sorted(i for r in results for i in r["ids"]) == list(range(IDS)), "one owner each"
    assert sum(r["shared"] for r in results) == LIMIT, "the shared user's limit holds"
    uses = sorted(count for r in results for count in r["uses"])
    assert uses == list(range(1, USES + 1)), "each use is recorded exactly once"
    with SQLStore(url, prefix=prefix) as store:
        for seed, result in enumerate(results):
            owned = {p.credential_id for p in store.list_passkeys(f"{tag}-user-{seed}")}
            assert owned == {f"{tag}-cred-{i}" for i in result["ids"]}
        assert len(store.list_passkeys(f"{tag}-shared")) == LIMIT
        (used,) = store.list_passkeys(f"{tag}-used")
        assert used.sign_count == USES
    return sum(1 for result in results if result["ids"]) > 1


def test_passkey_races_between_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    SQLStore.sqlite(path).close()
    race_until_overlap(f"sqlite:///{path}", "stepup_")


@pytest.mark.postgres
def test_passkey_races_between_processes_on_postgres() -> None:
    need(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    prefix = f"t{uuid.uuid4().hex[:12]}_"
    store = SQLStore(POSTGRES_URL, prefix=prefix)
    store.create_schema()
    try:
        race_until_overlap(POSTGRES_URL, prefix)
    finally:
        store.drop_schema()
        store.close()
