"""Bodies Django refuses to parse (multipart without a boundary, a body over
DATA_UPLOAD_MAX_MEMORY_SIZE, more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields) get at the
SAML ACS the same translated 400 page as any other unreadable answer, not Django's bare
"Bad Request (400)", and use nothing up."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from idp.saml import saml_idp
from integrations.django.django_support import Site
from integrations.django.test_sso import idp, keys, press_sso_button, saml_alice, saml_site
from integrations.sso_refusal_support import NOT_CONFIRMED

pytestmark = pytest.mark.saml

__all__ = ["idp", "keys", "saml_site"]  # the fixtures, shared with test_sso

FORM = "application/x-www-form-urlencoded"
HOSTILE: dict[str, dict[str, Any]] = {
    "multipart without boundary": {
        "data": b"SAMLResponse=abc",
        "content_type": "multipart/form-data",
    },
    "body over the upload limit": {"data": "SAMLResponse=" + "A" * 3_000_000, "content_type": FORM},
    "over 1000 fields": {"data": "&".join(f"f{i}=x" for i in range(1001)), "content_type": FORM},
    "over 1000 multipart fields": {"data": {f"f{i}": "x" for i in range(1001)}},
}


def shown(response: Any) -> list[str]:
    """What a person reads: the page's headings and paragraphs."""
    found = re.findall(r"<(?:p|h1)[^>]*>(.*?)</(?:p|h1)>", response.content.decode(), re.S)
    return [html.unescape(re.sub("<[^>]+>", "", text)).strip() for text in found]


@pytest.mark.parametrize("body", sorted(HOSTILE))
@pytest.mark.parametrize("language", ["en", "de"])
def test_a_body_django_refuses_to_parse_gets_the_acs_page(
    saml_site: Site, idp: saml_idp.TestIdP, body: str, language: str
) -> None:
    alice = saml_alice(saml_site)
    refused = alice.get("/api-key/?tab=1")
    request = idp.receive(press_sso_button(alice, refused["Location"])["Location"])
    client = alice.client
    empty = client.post("/stepup/reauth/saml/acs/", {}, HTTP_ACCEPT_LANGUAGE=language)
    assert empty.status_code == 400  # the page any answer without a SAMLResponse gets

    hostile = client.post(
        "/stepup/reauth/saml/acs/", HTTP_ACCEPT_LANGUAGE=language, **HOSTILE[body]
    )
    assert hostile.status_code == 400
    assert hostile["Content-Type"].startswith("text/html")
    assert shown(hostile) == shown(empty)
    if language == "en":
        assert any(NOT_CONFIRMED in line for line in shown(hostile))

    answer = {
        "SAMLResponse": idp.answer(request, saml_idp.ALICE),
        "RelayState": request.relay_state or "",
    }
    assert alice.post("/stepup/reauth/saml/acs/", answer).status_code == 303
