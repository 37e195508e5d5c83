"""No secret, code or recovery code in any event, repr, log line or error message."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from stepup.adapters.storage.memory import MemoryStore
from stepup.config_users import ConfigUsers
from stepup.errors import StepupError
from stepup.events import EventBus, StepupEvent
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import TwoFactor
from stepup.verifier import TOTPVerifier


def _contains(text: str, secret: str) -> bool:
    """Digit codes count only as whole numbers: ``123456`` inside a timestamp is chance."""
    if secret.isdigit():
        return re.search(rf"(?<!\d){secret}(?!\d)", text) is not None
    return secret in text


def _texts(event: StepupEvent) -> list[str]:
    fields = dataclasses.asdict(event)
    return [repr(event), str(event), repr(fields), *(str(v) for v in fields.values())]


def test_nothing_secret_leaks_through_the_whole_lifecycle(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = SettableClock(1_699_999_980)
    store = MemoryStore()
    seen: list[StepupEvent] = []

    def broken_listener(event: StepupEvent) -> None:
        raise RuntimeError(f"listener broke on {event.name}")

    events = EventBus(seen.append, broken_listener)
    tf = TwoFactor(store, clock=clock, events=events, box=SecretBox({"k": bytes(32)}, current="k"))
    sensitive: list[str] = []
    outputs: list[str] = []

    def note(*values: Any) -> None:
        outputs.extend(repr(v) for v in values)
        outputs.extend(str(v) for v in values)

    enrolment = tf.begin_enrolment("alice", "alice@example.com")
    totp = TOTP(enrolment.secret)
    sensitive.append(enrolment.secret)
    note(enrolment, tf, store, totp, store.get_credential("alice"))

    codes = [totp.code_for_step(totp.step(clock()) + d) for d in range(-1, 2)]
    sensitive.extend(codes)
    wrong = next(c for c in ("000000", "111111", "222222") if c not in codes)
    note(tf.confirm_enrolment("alice", wrong))
    confirmation = tf.confirm_enrolment("alice", codes[1])
    sensitive.extend(confirmation.recovery_codes)
    sensitive.extend(c.replace("-", "") for c in confirmation.recovery_codes)
    note(confirmation, store.get_credential("alice"))

    note(tf.verify("alice", codes[1]))  # replayed
    note(tf.verify("alice", codes[2]))  # ok
    note(tf.verify("alice", codes[2] + "\n"))  # malformed
    for _ in range(5):
        note(tf.verify("alice", wrong))  # invalid, then throttled
    note(tf.use_recovery_code("alice", confirmation.recovery_codes[0]))
    note(tf.use_recovery_code("alice", confirmation.recovery_codes[0]))
    new_codes = tf.regenerate_recovery_codes("alice")
    sensitive.extend(new_codes)
    for call in (
        lambda: tf.begin_enrolment("alice", "alice@example.com"),
        lambda: tf.remove("alice", actor_id="mallory"),
    ):
        with pytest.raises(StepupError) as info:
            call()
        note(info.value)
    # A secret no configured key opens: refused as unavailable, and logged for operators.
    other_key = TwoFactor(store, clock=clock, box=SecretBox({"x": bytes(32)}, current="x"))
    unreadable = other_key.verify("alice", codes[2])
    assert unreadable.reason == "unavailable"
    note(unreadable)
    assert "cannot be opened" in caplog.text
    tf.remove("alice", actor_id="alice")

    # Config-file users: the file's secret stays out of everything too.
    file_secret = "DT55OG3UM45JFPDKPFQFU5YSHSKXV2XW"
    sensitive.append(file_secret)
    path = tmp_path / "users.toml"
    path.write_text(f'[users.bob]\notp_secret = "{file_secret}"\n', encoding="utf-8")
    users = ConfigUsers.load(path)
    file_tf = TwoFactor(MemoryStore(), clock=clock, events=events, config_users=users)
    bob_code = TOTP(file_secret).at(clock())
    sensitive.append(bob_code)
    note(users, file_tf, users.get("bob"), file_tf.verify("bob", bob_code))
    note(file_tf.verify("bob", bob_code))
    path.write_text(f'[users.bob]\notp_secret = "{file_secret}"\ndigits = 7\n', encoding="utf-8")
    with pytest.raises(StepupError) as info:
        ConfigUsers.load(path)
    note(info.value)

    assert len(seen) > 15
    assert {e.name for e in seen} >= {
        "TwoFactorVerified",
        "TwoFactorRejected",
        "ReplayDetected",
        "Throttled",
        "TwoFactorEnabled",
        "TwoFactorRemoved",
        "RecoveryCodeUsed",
        "RecoveryCodesRegenerated",
    }
    assert "listener broke" in caplog.text  # the failing listener was logged, not fatal
    haystacks = {
        "events": [text for event in seen for text in _texts(event)],
        "logs": [caplog.text],
        "reprs and errors": outputs,
    }
    for where, texts in haystacks.items():
        for text in texts:
            for secret in sensitive:
                assert not _contains(text, secret), f"{where}: {secret!r} found in {text!r}"


def test_verifier_events_carry_no_code() -> None:
    clock = SettableClock(1_699_999_980)
    seen: list[StepupEvent] = []
    verifier = TOTPVerifier(MemoryStore(), clock=clock, events=EventBus(seen.append))
    totp = TOTP("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    code = totp.at(clock())
    verifier.verify("cred", totp, code)
    verifier.verify("cred", totp, code)
    assert seen
    for event in seen:
        for text in _texts(event):
            assert not _contains(text, code)
            assert "JBSWY3DP" not in text
