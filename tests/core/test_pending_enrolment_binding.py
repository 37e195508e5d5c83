"""A pending enrolment (or device being added) is shown again only to the session that
began it: ``pending_enrolment`` and ``pending_device`` take the ``device_id`` the session
kept from ``begin_*``, and a kept id of ``""`` (nothing kept) matches nothing. The
enrolment carries its device's own digits, period and algorithm, which the enrolment
page states, so typing the key in gives the codes the QR code gives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepup.adapters.storage.memory import MemoryStore
from stepup.errors import MalformedInputError
from stepup.integrations.views import enrolment_page
from stepup.testing import SettableClock
from stepup.totp import TOTP
from stepup.twofactor import Enrolment, TwoFactor

ACCOUNT = "alice@example.com"


@pytest.fixture
def tf(make_two_factor: Callable[..., Any]) -> Any:
    return make_two_factor(issuer="Acme")


def _uri_settings(enrolment: Enrolment) -> tuple[int, int, str]:
    query = parse_qs(urlsplit(enrolment.uri).query)
    return int(query["digits"][0]), int(query["period"][0]), query["algorithm"][0]


def test_only_the_kept_id_shows_the_pending_enrolment(tf: Any, clock: SettableClock) -> None:
    begun = tf.begin_enrolment("alice", ACCOUNT)
    clock.advance(60)
    again = tf.pending_enrolment("alice", ACCOUNT, device_id=begun.device_id)
    assert again is not None
    assert (again.secret, again.device_id) == (begun.secret, begun.device_id)
    # Another session kept nothing (""), or another device's id: it sees no secret.
    assert tf.pending_enrolment("alice", ACCOUNT, device_id="") is None
    assert tf.pending_enrolment("alice", ACCOUNT, device_id="totp:someone-else") is None
    # Its own begin replaces the pending one: the first session's id matches nothing now.
    replaced = tf.begin_enrolment("alice", ACCOUNT)
    assert replaced.secret != begun.secret
    assert tf.pending_enrolment("alice", ACCOUNT, device_id=begun.device_id) is None
    assert not tf.confirm_enrolment("alice", TOTP(begun.secret).at(clock())).ok
    # Without device_id (an app that shows nothing again), the pending one as before.
    assert tf.pending_enrolment("alice", ACCOUNT).device_id == replaced.device_id


def test_only_the_kept_id_shows_the_device_being_added(tf: Any, clock: SettableClock) -> None:
    first = tf.begin_enrolment("alice", ACCOUNT)
    assert tf.confirm_enrolment("alice", TOTP(first.secret).at(clock())).ok
    clock.advance(30)
    begun = tf.begin_device("alice", ACCOUNT, name="Tablet")
    again = tf.pending_device("alice", ACCOUNT, device_id=begun.device_id)
    assert again is not None
    assert again.secret == begun.secret
    assert tf.pending_device("alice", ACCOUNT, device_id="") is None
    assert tf.pending_device("alice", ACCOUNT, device_id=first.device_id) is None
    replaced = tf.begin_device("alice", ACCOUNT, name="Tablet")
    assert tf.pending_device("alice", ACCOUNT, device_id=begun.device_id) is None
    assert tf.pending_device("alice", ACCOUNT, device_id=replaced.device_id) is not None
    assert not tf.confirm_device("alice", TOTP(begun.secret).at(clock())).ok


@pytest.mark.parametrize("kept", [b"totp:x", 7, ["totp:x"]])
def test_a_device_id_that_is_not_text_is_a_typed_error(tf: Any, kept: object) -> None:
    tf.begin_enrolment("alice", ACCOUNT)
    with pytest.raises(MalformedInputError):
        tf.pending_enrolment("alice", ACCOUNT, device_id=kept)
    with pytest.raises(MalformedInputError):
        tf.pending_device("alice", ACCOUNT, device_id=kept)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    digits=st.sampled_from([6, 8]),
    period=st.integers(min_value=1, max_value=300),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
)
def test_the_page_states_the_settings_of_the_key_uri(
    digits: int, period: int, algorithm: Any
) -> None:
    tf = TwoFactor(
        MemoryStore(),
        issuer="Acme",
        clock=SettableClock(),
        digits=digits,
        period=period,
        algorithm=algorithm,
    )
    enrolment = tf.begin_enrolment("alice", ACCOUNT)
    assert (enrolment.digits, enrolment.period, enrolment.algorithm) == _uri_settings(enrolment)
    page = enrolment_page(enrolment, account=ACCOUNT, issuer="Acme")
    assert (page.digits, page.period, page.algorithm) == (digits, period, algorithm)


def test_an_added_device_states_the_first_devices_period() -> None:
    store, clock = MemoryStore(), SettableClock()
    before = TwoFactor(store, issuer="Acme", clock=clock)
    first = before.begin_enrolment("alice", ACCOUNT)
    assert before.confirm_enrolment("alice", TOTP(first.secret).at(clock())).ok
    now = TwoFactor(store, issuer="Acme", clock=clock, period=60, digits=8)  # changed since
    added = now.begin_device("alice", ACCOUNT, name="Tablet")
    assert _uri_settings(added) == (8, 30, "SHA1")  # one ledger: it steps with the first
    page = enrolment_page(added, account=ACCOUNT, issuer="Acme", adding=True)
    assert (page.digits, page.period, page.algorithm) == (8, 30, "SHA1")
    shown = now.pending_device("alice", ACCOUNT, device_id=added.device_id)
    assert shown is not None
    assert (shown.digits, shown.period) == (8, 30)
