"""Django's add-another-app confirmation answers its 429 as every 429 page does."""

from __future__ import annotations

from typing import Any

from integrations.django.django_support import Site


def test_a_throttled_app_confirmation_says_until_when(site: Site, bob: Any) -> None:
    """The add-another-app confirmation's 429 carries Retry-After as every 429 page
    does: its status was set after the page was rendered as a 400."""
    bob.enrol()
    site.clock.advance(30)
    assert bob.form("/stepup/2fa/devices/add/", {"name": "Tablet"}).status_code == 303
    answers = [bob.form("/stepup/2fa/devices/confirm/", {"code": f"{n:06d}"}) for n in range(8)]
    paused = [a for a in answers if a.status_code == 429]
    assert paused, [a.status_code for a in answers]
    assert all(a.get("Retry-After") for a in paused)
