"""What docs/totp.md, docs/storage.md and docs/testing.md say, against what stepup does:
the throttles someone who knows the password can keep blocked (and the keys an admin
clears), a double-submitted code counted as a failure, the extra that installs the
contract suite's needs, and what the Django example needs set to load its settings."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from stepup import TOTP, TwoFactor
from stepup.adapters.storage.memory import MemoryStore
from stepup.passkeys import _SIGN_IN_THROTTLE_KEY
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.twofactor import VerifyReason

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _ways_out() -> str:
    page = (DOCS / "totp.md").read_text()
    return page.split("The owner's ways out", 1)[1].split("Watch the events", 1)[0]


def test_the_ways_out_say_what_someone_with_the_password_can_keep_blocked() -> None:
    ways_out = _ways_out()
    assert "not a sure way out" in ways_out
    assert "the sure way out" in ways_out
    cleared = re.findall(r'store\.throttle_clear\((f?"[^"]*"|[\w.]+)\)', ways_out)
    assert cleared == [
        "credential.credential_id",
        'f"recovery:{user_id}"',
        f'f"{_SIGN_IN_THROTTLE_KEY}{{user_id}}"',
    ]


def _enrolled(clock: SettableClock) -> tuple[TwoFactor, MemoryStore, TOTP, tuple[str, ...]]:
    store = MemoryStore()
    box = SecretBox({"k": SecretBox.generate_key()}, current="k")
    two_factor = TwoFactor(store, issuer="Acme", box=box, clock=clock)
    phone = TOTP(two_factor.begin_enrolment("alice", account="alice").secret)
    confirmation = two_factor.confirm_enrolment("alice", phone.at(clock()))
    return two_factor, store, phone, tuple(confirmation.recovery_codes)


def test_a_double_submitted_code_counts_the_second_submission_as_a_failure() -> None:
    page = (DOCS / "totp.md").read_text()
    assert "is `replayed` the second time, and counts" in page
    assert "is spent by the first and `invalid` the second time, and that charge stays" in page
    clock = SettableClock()
    two_factor, store, phone, codes = _enrolled(clock)
    clock.advance(30)
    credential = store.get_credential("alice")
    assert credential is not None
    code = phone.at(clock())
    assert two_factor.verify("alice", code).reason is VerifyReason.OK
    assert two_factor.verify("alice", code).reason is VerifyReason.REPLAYED
    assert store.throttle_state(credential.credential_id).failures == 1
    assert two_factor.use_recovery_code("alice", codes[0]).reason is VerifyReason.OK
    assert two_factor.use_recovery_code("alice", codes[0]).reason is VerifyReason.INVALID
    assert store.throttle_state("recovery:alice").failures == 1


def test_the_contract_suite_names_the_extra_an_integrator_installs() -> None:
    section = (DOCS / "storage.md").read_text().split("## Running the contract suite", 1)[1]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    named = re.findall(r"the `(\w+)` extra", section.split("```", 1)[0])
    assert named == ["testing"]
    assert {re.split(r"[<>=\[ ]", r)[0] for r in extras["testing"]} >= {"pytest", "hypothesis"}
    assert 'pip install "stepup-auth[testing]"' in section


def test_the_testing_page_says_what_the_django_example_needs_set() -> None:
    page = (DOCS / "testing.md").read_text()
    intro = page.split("### Flask", 1)[0].split("Each block below", 1)[1]
    assert "`DJANGO_DEBUG=1` (or `DJANGO_SECRET_KEY`) for Django" in intro
    settings = (DOCS / "examples" / "django_app" / "acme" / "settings.py").read_text()
    assert 'os.environ.get("DJANGO_DEBUG") == "1"' in settings
    assert 'os.environ.get("DJANGO_SECRET_KEY", "")' in settings
