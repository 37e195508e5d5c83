"""Bodies Starlette's form parser refuses (multipart without a boundary, a field over
1 MB, more than 1000 fields) get at the SAML ACS the same translated 400 page as any
other unreadable answer, not Starlette's plain-text 400, and use nothing up."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

from idp.saml import saml_idp
from integrations.sso_refusal_support import NOT_CONFIRMED
from integrations.starlette.starlette_support import TestApp
from integrations.starlette.test_sso import idp, keys, press_sso_button, saml_app, saml_browser

pytestmark = pytest.mark.saml

__all__ = ["idp", "keys", "saml_app"]  # the fixtures, shared with test_sso

HOSTILE: dict[str, dict[str, Any]] = {
    "multipart without boundary": {
        "content": b"SAMLResponse=abc",
        "headers": {"content-type": "multipart/form-data"},
    },
    "field over 1 MB": {"data": {"SAMLResponse": "A" * 1_100_000}},
    "over 1000 fields": {"files": {f"f{i}": (None, "x") for i in range(1001)}},
}


def shown(response: Any) -> list[str]:
    """What a person reads: the page's headings and paragraphs."""
    found = re.findall(r"<(?:p|h1)[^>]*>(.*?)</(?:p|h1)>", response.text, re.S)
    return [html.unescape(re.sub("<[^>]+>", "", text)).strip() for text in found]


@pytest.mark.parametrize("body", sorted(HOSTILE))
@pytest.mark.parametrize("language", ["en", "de"])
def test_a_body_the_form_parser_refuses_gets_the_acs_page(
    saml_app: TestApp, idp: saml_idp.TestIdP, body: str, language: str
) -> None:
    alice = saml_browser(saml_app)
    try:
        refused = alice.get("/api-key?tab=1")
        request = idp.receive(
            press_sso_button(alice, refused.headers["location"]).headers["location"]
        )
        kwargs = dict(HOSTILE[body])
        headers = {**kwargs.pop("headers", {}), "accept-language": language}
        empty = alice.post("/stepup/saml/acs", data={}, headers={"accept-language": language})
        assert empty.status_code == 400  # the page any answer without a SAMLResponse gets

        hostile = alice.post("/stepup/saml/acs", headers=headers, **kwargs)
        assert hostile.status_code == 400
        assert hostile.headers["content-type"].startswith("text/html")
        assert shown(hostile) == shown(empty)
        if language == "en":
            assert any(NOT_CONFIRMED in line for line in shown(hostile))

        answer = {
            "SAMLResponse": idp.answer(request, saml_idp.ALICE),
            "RelayState": request.relay_state or "",
        }
        assert alice.post("/stepup/saml/acs", data=answer).status_code == 303
    finally:
        alice.close()
