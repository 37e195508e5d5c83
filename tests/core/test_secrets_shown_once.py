"""A TOTP secret is shown once, at enrolment (issue 2): once a device is confirmed, no
public method of TwoFactor or AsyncTwoFactor hands its secret out again, sealed or not.
``devices()`` returned the stored records, secret included (``plain:<BASE32>`` without
a SecretBox), and their ``to_dict()`` put it into any JSON listing of them."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepup.records import TotpDeviceInfo
from stepup.sealing import SecretBox
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import AsyncTwoFactor, TwoFactor
from store_kinds import STORE_KINDS, open_store

START = 1_699_999_980.0
KEY = bytes(range(32))
BOXES = {"sealed": lambda: SecretBox({"k1": KEY}, current="k1"), "plain": lambda: None}
#: Every public method, and whether the walk below calls it (a new one must be added).
PUBLIC = {
    "begin_device",
    "begin_enrolment",
    "confirm_device",
    "confirm_enrolment",
    "devices",
    "is_enrolled",
    "legacy_recovery_codes",
    "pending_device",
    "pending_enrolment",
    "regenerate_recovery_codes",
    "remove",
    "remove_device",
    "rename_device",
    "required_for",
    "reseal",
    "use_recovery_code",
    "verify",
}


@dataclasses.dataclass
class Secrets:
    """The spellings of the confirmed devices' secrets a result must never hold."""

    spellings: set[str] = dataclasses.field(default_factory=set)

    def add(self, base32: str, stored: str) -> None:
        raw = base64.b32decode(base32 + "=" * (-len(base32) % 8))
        self.spellings |= {base32, base32.lower(), stored, raw.hex(), raw.decode("latin-1")}
        if ":" in stored:
            self.spellings.add(stored.rsplit(":", 1)[1])  # the sealed or plain payload


def values(result: object) -> Iterator[object]:
    """``result`` and everything inside it: fields, items, a to_dict() form, attributes."""
    yield result
    if isinstance(result, str | bytes | int | float | bool) or result is None:
        return
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        for item in dataclasses.fields(result):
            yield from values(getattr(result, item.name))
    if isinstance(result, dict):
        for key, value in result.items():
            yield from values(key)
            yield from values(value)
    elif isinstance(result, tuple | list | set | frozenset):
        for item in result:
            yield from values(item)
    to_dict = getattr(result, "to_dict", None)
    if callable(to_dict):
        yield json.dumps(to_dict(), default=str)


def assert_secret_free(result: object, secrets: Secrets, method: str) -> None:
    for value in values(result):
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str) and any(s and s in value for s in secrets.spellings):
            pytest.fail(f"{method} returned a confirmed device's secret")  # never shown


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    with open_store(request.param, tmp_path) as opened:
        yield opened


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_no_public_method_returns_a_confirmed_secret(store: Any, box: str, flavour: str) -> None:
    clock = SettableClock(START)
    options: dict[str, Any] = {"clock": clock, "box": BOXES[box]()}
    service: Any = (
        TwoFactor(store, **options) if flavour == "sync" else AsyncTwoFactor(store, **options)
    )

    def call(method: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(service, method)(*args, **kwargs)
        return asyncio.run(result) if asyncio.iscoroutine(result) else result

    secrets = Secrets()

    def stored_secret(device_id: str) -> str:
        credential = store.get_credential("alice")
        return next(d.secret for d in credential.totp_devices if d.device_id == device_id)

    called: set[str] = set()

    def checked(method: str, *args: Any, **kwargs: Any) -> Any:
        called.add(method)
        result = call(method, *args, **kwargs)
        assert_secret_free(result, secrets, method)
        return result

    first = call("begin_enrolment", "alice", "alice@example.com", name="Phone")
    phone = TOTP(first.secret)
    confirmation = call("confirm_enrolment", "alice", phone.at(clock()))
    assert confirmation.ok
    called.update({"begin_enrolment", "confirm_enrolment"})
    secrets.add(first.secret, stored_secret(first.device_id))
    clock.advance(30)
    second = call("begin_device", "alice", "alice@example.com", name="Tablet")
    tablet = TOTP(second.secret)
    assert call("confirm_device", "alice", tablet.at(clock())).ok
    secrets.add(second.secret, stored_secret(second.device_id))
    clock.advance(30)

    listed = checked("devices", "alice")
    assert [type(d) for d in listed] == [TotpDeviceInfo, TotpDeviceInfo]
    assert [(d.device_id, d.name) for d in listed] == [
        (first.device_id, "Phone"),
        (second.device_id, "Tablet"),
    ]
    assert all(not hasattr(d, "secret") for d in listed)
    assert all("secret" not in d.to_dict() for d in listed)
    checked("is_enrolled", "alice")
    checked("required_for", "web")
    checked("verify", "alice", phone.at(clock()))
    checked("verify", "alice", "000000")
    checked("use_recovery_code", "alice", confirmation.recovery_codes[0])
    checked("regenerate_recovery_codes", "alice")
    checked("legacy_recovery_codes", "alice")
    checked("reseal", "alice")
    checked("pending_enrolment", "alice", "alice@example.com")
    checked("rename_device", "alice", second.device_id, "Work tablet")
    checked("begin_device", "alice", "alice@example.com", name="Laptop")  # a new secret
    checked("pending_device", "alice", "alice@example.com")
    checked("confirm_device", "alice", "000000")
    checked("devices", "alice")
    checked("remove_device", "alice", second.device_id, actor_id="alice")
    checked("remove", "alice", actor_id="alice")
    called.update({"confirm_device"})
    assert called == PUBLIC == {m for m in dir(TwoFactor) if not m.startswith("_")}


def test_the_device_view_lists_what_the_pages_and_the_command_line_read() -> None:
    info = TotpDeviceInfo("totp:1", "Phone", 8, 60, "SHA256", 10.0, 20.0)
    assert info.to_dict() == {
        "device_id": "totp:1",
        "name": "Phone",
        "digits": 8,
        "period": 60,
        "algorithm": "SHA256",
        "created_at": 10.0,
        "last_used_at": 20.0,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.name = "x"  # type: ignore[misc]
