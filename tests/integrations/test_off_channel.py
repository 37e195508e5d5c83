"""stepup's pages tell the web channel from the others as the core does: by value, so a
subject loader that writes the channel as plain text ("web", "api_key") gets the same
answer from the pages as from the decision (it got a 403 on every page for "web")."""

from __future__ import annotations

import pytest

from stepup.integrations.passkey_endpoint import off_channel
from stepup.subject import Subject
from stepup.twofactor import Channel, TwoFactor


@pytest.mark.parametrize("channel", list(Channel))
def test_the_pages_and_the_core_agree_on_every_channel(channel: Channel) -> None:
    for written in (channel, str(channel.value)):
        subject = Subject("alice", "s1", channel=written)  # type: ignore[arg-type]
        assert off_channel(subject) is not TwoFactor.required_for(written)


def test_nobody_signed_in_is_not_refused_here() -> None:
    assert off_channel(None) is False
