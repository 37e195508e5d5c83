"""Every event stepup emits has its Django signal: an event without one would reach no
receiver, and a Django project's audit log would miss it without a word."""

from __future__ import annotations

import inspect

import stepup.events
import stepup.passkeys
from stepup.events import StepupEvent
from stepup.integrations.django.signals import SIGNALS


def test_every_event_class_has_a_signal() -> None:
    events = {
        cls
        for module in (stepup.events, stepup.passkeys)
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, StepupEvent) and cls is not StepupEvent
    }
    assert events
    assert sorted(c.__name__ for c in events - set(SIGNALS)) == []


def test_every_event_is_named_after_its_class() -> None:
    """Audit logs file an event under ``event.name``: no field may hide it (a passkey's
    label did, so a registration was filed under whatever the user called the key)."""
    import pytest

    from stepup.passkeys import PasskeyRegistered

    registered = PasskeyRegistered(at=1.0, user_id="u", credential_id="c", passkey_name="Work")
    assert registered.name == "PasskeyRegistered"
    for cls in SIGNALS:
        assert "name" not in getattr(cls, "__dataclass_fields__", {}), cls
    with pytest.raises(TypeError, match="may not be called 'name'"):

        class Labelled(StepupEvent):
            name: str
