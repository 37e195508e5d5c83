"""The core alone: a fresh virtual environment with only ``stepup-auth`` installed holds
the three packages the core imports (and what they require), imports ``stepup``, verifies
a TOTP code, answers ``Reauth.check`` on the memory store, hashes a password, and prints
its version; by then the process has imported every package the core declares. The
README's taste and the opening examples of docs/totp.md and docs/reauth.md run there too,
as written."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from packaging_support import DIST_NAME, ROOT, Built, Venv, closure, dependency_table

pytestmark = pytest.mark.packaging

SMOKE = """
import json, sys
import stepup
from stepup import Policy, Reauth, ReauthRequired, Allowed, Subject, TOTP, TOTPVerifier
from stepup import generate_secret
from stepup.adapters.storage import MemoryStore
from stepup.records import Tenant
from stepup.testing import SettableClock
from stepup.totp import qr_svg

clock = SettableClock()
store = MemoryStore()

totp = TOTP(generate_secret())
verifier = TOTPVerifier(store, clock=clock)
code = totp.at(clock())
first = verifier.verify("credential-1", totp, code)
again = verifier.verify("credential-1", totp, code)
wrong = verifier.verify("credential-1", totp, "000000" if code != "000000" else "111111")

store.put_tenant(Tenant("acme", {"feature_flags": {"sensitive_actions_reauth": True}}))
reauth = Reauth(store, Policy.default(), clock=clock)
alice = Subject("alice", "session-1")
before = reauth.check(alice, "api_key.regenerate", "acme")
reauth.record(alice, ["pwd"])
after = reauth.check(alice, "api_key.regenerate", "acme")
other_session = reauth.check(Subject("alice", "session-2"), "api_key.regenerate", "acme")

from argon2 import PasswordHasher
from stepup.adapters.idp.password import CHEAPEST, hash_password
hashed = hash_password("a password", hasher=PasswordHasher.from_parameters(CHEAPEST))

print(json.dumps({
    "file": stepup.__file__,
    "version": stepup.__version__,
    "totp": [first.ok, str(again.reason), wrong.ok],
    "reauth": [type(before).__name__, type(after).__name__, type(other_session).__name__],
    "qr": qr_svg(totp.provisioning_uri("alice", "Acme")).lstrip().startswith("<"),
    "argon2id": hashed.startswith("$argon2id$"),
    "modules": sorted({name.split(".")[0] for name in sys.modules}),
}))
"""


def test_the_core_installs_alone_and_works(
    built: Built, fresh_venv: Callable[..., Venv], tmp_path: Path
) -> None:
    venv = fresh_venv(DIST_NAME)

    installed = venv.distributions()
    core = [row.parsed for row in dependency_table() if row.extra == "core"]
    assert set(installed) == closure(core, installed) | {DIST_NAME}, sorted(installed)
    assert venv.pip_list() == set(installed)  # pip list: the same, nothing else
    assert {"pyotp", "itsdangerous", "authlib"}.isdisjoint(installed)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = json.loads(venv.run("python", "-c", SMOKE, cwd=outside))
    assert result["file"].startswith(str(venv.path))
    assert result["totp"] == [True, "replayed", False]
    assert result["reauth"] == ["ReauthRequired", "Allowed", "ReauthRequired"]
    assert result["qr"] is True
    assert result["argon2id"] is True
    imported = set(result["modules"])
    assert {"argon2", "cryptography", "segno"} <= imported  # each core package is used
    assert {"sqlalchemy", "redis", "flask", "django", "starlette"}.isdisjoint(imported)

    version = venv.run("stepup", "--version", cwd=outside).strip()
    assert version == f"stepup {result['version']}"
    assert built.wheel.name.startswith(f"stepup_auth-{result['version']}-")  # one source

    # The examples a newcomer meets first: each block as written, in that environment,
    # from elsewhere.
    for block, expected in _copied_examples():
        assert venv.run("python", "-c", block, cwd=outside).splitlines() == expected


def _section_blocks(path: Path, heading: str) -> list[str]:
    text = "\n" + path.read_text()  # a heading on the first line starts a line too
    section = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, re.S)
    return blocks


def _copied_examples() -> list[tuple[str, list[str]]]:
    """The examples a newcomer copies first, with the lines each prints."""
    taste = _section_blocks(ROOT / "README.md", "## A taste")
    (totp,) = _section_blocks(ROOT / "docs" / "totp.md", "## In one piece")
    reauth = _section_blocks(
        ROOT / "docs" / "reauth.md", "# Re-authentication for sensitive actions"
    )[0]
    events = "['RecoveryCodeUsed', 'TwoFactorRejected', 'TwoFactorRemoved']"
    return [
        (taste[0], ["ok", "replayed"]),
        (taste[1], ["re-authenticate with ['pwd']", "True fresh_grant"]),
        (totp, ["True 10", "ok", "replayed", "ok", "invalid", "False", events]),
        (reauth, ["['pwd'] 21600.0", "fresh_grant", "False", "False"]),
    ]
