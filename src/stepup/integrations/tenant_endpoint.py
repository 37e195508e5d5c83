"""The steps of the tenant settings ``PATCH`` that every integration takes the same way.

Any method but ``PATCH`` is a 405 before anything else
(:func:`stepup.integrations.views.tenant_method_not_allowed`). Who may ask is settled
before a byte of the body is read: signed in (401), a JSON body (415), an acceptable
``Accept`` (406) and no query parameter (400: JSON:API 1.1 has a server refuse one it
does not process), all four :func:`stepup.integrations.views.tenant_request_refusal`;
a tenant admin (403, :func:`admin_refusal`); a fresh re-authentication for
``tenant.settings.update`` (the core's decision, answered as every guarded JSON
endpoint but as a JSON:API document:
:func:`stepup.integrations.views.tenant_decision_response`). Only then is the body read,
chunk by chunk, and abandoned as soon as it is over :data:`stepup.tenants.MAX_BODY`
(:func:`read_body`), so a large body never sits whole in memory; the core parses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from functools import partial
from typing import Final

from ..errors import PermissionDeniedError
from ..tenants import MAX_BODY, TenantPatchError, body_not_json, body_too_large
from .http import HttpResponse
from .views import hook_says_yes, tenant_error_response

__all__ = ["admin_refusal", "aread_body", "read_body", "stream_chunks"]

_CHUNK: Final = 8192


def admin_refusal(is_admin: object, locale: str | None = None) -> HttpResponse | None:
    """403 unless the app's ``is_tenant_admin`` hook answered exactly ``True`` (see
    :func:`stepup.integrations.views.hook_says_yes`); ``None`` to go ahead."""
    if hook_says_yes(is_admin):
        return None
    return tenant_error_response(
        PermissionDeniedError("only a tenant admin of this tenant may change its settings"),
        locale,
    )


def stream_chunks(read: Callable[[int], bytes]) -> Iterator[bytes]:
    """A file-like body (WSGI input, Django's request) as chunks for :func:`read_body`."""
    return iter(partial(read, _CHUNK), b"")


def _declared_too_large(content_length: str | None) -> bool:
    """A ``Content-Length`` over the limit is refused before a byte is read."""
    if content_length is None or not content_length.strip().isdigit():
        return False
    return int(content_length) > MAX_BODY


def _add(buffer: bytearray, chunk: bytes) -> None:
    buffer += chunk
    if len(buffer) > MAX_BODY:
        raise body_too_large()


def read_body(chunks: Iterable[bytes], content_length: str | None = None) -> bytes:
    """The body, read chunk by chunk; a :class:`~stepup.tenants.TenantPatchError` (400
    ``too_large``) as soon as it is over the limit, without reading the rest, and (400
    ``invalid_json``) when the server cannot read it whole (the client went away, or
    sent fewer bytes than its ``Content-Length``)."""
    if _declared_too_large(content_length):
        raise body_too_large()
    buffer = bytearray()
    try:
        for chunk in chunks:
            _add(buffer, chunk)
    except TenantPatchError:
        raise
    except Exception as exc:  # the server's reader gave up: never a 500 or an HTML page
        raise body_not_json() from exc
    return bytes(buffer)


async def aread_body(chunks: AsyncIterable[bytes], content_length: str | None = None) -> bytes:
    """:func:`read_body` for an ASGI body stream."""
    if _declared_too_large(content_length):
        raise body_too_large()
    buffer = bytearray()
    try:
        async for chunk in chunks:
            _add(buffer, chunk)
    except TenantPatchError:
        raise
    except Exception as exc:  # a client gone mid-body (ClientDisconnect): a 400, not a 500
        raise body_not_json() from exc
    return bytes(buffer)
