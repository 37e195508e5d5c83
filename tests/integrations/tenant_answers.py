"""Reading the tenant endpoint's JSON:API refusals in tests: its 401 ``reauth_required``
is an error object whose ``meta`` carries what a guarded JSON endpoint's body carries
(``methods``, ``reauth_url``...)."""

from __future__ import annotations

from typing import Any, Final

JSONAPI: Final = "application/vnd.api+json"


def only_error(document: Any) -> dict[str, Any]:
    """The one error object of a JSON:API error document (asserting it is one)."""
    assert isinstance(document, dict), document
    errors = document.get("errors")
    assert isinstance(errors, list), document
    assert len(errors) == 1, document
    error = errors[0]
    assert isinstance(error, dict), document
    return error


def reauth_asked(status: int, document: Any) -> dict[str, Any] | None:
    """The ``meta`` of the endpoint's ``401 reauth_required`` (what it asks for), or
    ``None`` when the answer is anything else."""
    if status != 401 or not isinstance(document, dict) or "errors" not in document:
        return None
    error = only_error(document)
    if error.get("code") != "reauth_required":
        return None
    meta: dict[str, Any] = error["meta"]
    return meta
