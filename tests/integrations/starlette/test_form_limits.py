"""stepup's pages read only forms of their own size: a few short fields and no file.

Starlette's form parser admits 1,000 fields of 1 MiB each by default (a body of a
gigabyte read into memory); Werkzeug and Django cap a form at 500 KB and 2.5 MB. A form
beyond stepup's limits is refused before it is read whole, as a form whose CSRF token
does not hold (403), and changes nothing."""

from __future__ import annotations

import pytest

from integrations.starlette.starlette_support import PASSWORDS, Browser, csrf_token
from stepup.integrations.starlette.pages import FORM_LIMITS

PAGE = "/stepup/reauth?action=api_key.read&next=/api-key"


def signed_form(alice: Browser) -> dict[str, str]:
    return {"password": PASSWORDS["alice"], "csrf_token": csrf_token(alice.get(PAGE).text)}


def test_a_form_of_stepups_size_passes(alice: Browser) -> None:
    assert alice.post(PAGE, data=signed_form(alice)).status_code == 303


@pytest.mark.parametrize(
    "extra",
    [
        {f"f{i}": "x" for i in range(int(FORM_LIMITS["max_fields"]))},  # too many fields
        {"padding": "x" * (int(FORM_LIMITS["max_part_size"]) + 1)},  # one field too long
    ],
    ids=["fields", "field_size"],
)
def test_a_larger_form_is_refused_and_grants_nothing(alice: Browser, extra: dict[str, str]) -> None:
    assert alice.patch_tenant(True).status_code == 200
    refused = alice.post(PAGE, data={**signed_form(alice), **extra})
    assert refused.status_code == 403
    assert alice.get("/api-key").status_code == 303  # still asked to re-authenticate


def test_a_file_is_refused(alice: Browser) -> None:
    assert alice.patch_tenant(True).status_code == 200
    form = signed_form(alice)
    refused = alice.post(PAGE, data=form, files={"upload": ("a.txt", b"x", "text/plain")})
    assert refused.status_code == 403
    assert alice.get("/api-key").status_code == 303
