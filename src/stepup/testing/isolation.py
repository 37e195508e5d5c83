"""A contract an app runs against its own wiring: a proof made by one user or in one
session never lets another user or session through.

The core binds every grant to a user and a session id; an app can still undo that by
wiring (a subject loader that reads the user id from a cookie it does not sign, a
session id shared by every browser, a sign-in that keeps the old session). The
check drives the app through its test client the way people would::

    from stepup.testing.isolation import check_grant_isolation

    def test_a_proof_never_grants_another_user_or_session(app):
        check_grant_isolation(
            sign_in=lambda user: signed_in_client(app, user),   # a new browser
            reauthenticate=lambda client: reauth(client, PASSWORDS[client.user]),
            allowed=lambda client: client.get("/settings/api-key").status_code == 200,
            users=("alice", "bob"),
            sign_in_again=lambda client, user: sign_in(client, user),  # same browser
            sign_out=lambda client: client.post("/logout"),
        )

``allowed(client)`` must ask for a guarded action (the tenant flag on) and answer
whether it went through; ``reauthenticate(client)`` completes a re-authentication in
that client. With ``sign_out``, a copy of a re-authenticated session (another client
given its cookies, :func:`copy_cookies`) must be refused once that session signed out:
a sign-out that never calls stepup's ``sign_out`` leaves the grant alive for anyone
holding the old cookie. The check fails with a sentence naming the leak it found.

:func:`check_tenant_admin_isolation` does the same for the app's ``is_tenant_admin``
hook: an admin of one tenant changes that tenant's settings (after the
re-authentication the PATCH asks for) and is refused (403) for another tenant's, so a
hook that ignores its ``tenant_id`` fails.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from http.cookiejar import CookieJar
from http.cookies import SimpleCookie
from typing import Any, TypeVar

__all__ = ["check_grant_isolation", "check_tenant_admin_isolation", "copy_cookies"]

C = TypeVar("C")


def check_grant_isolation(
    *,
    sign_in: Callable[[str], C],
    reauthenticate: Callable[[C], object],
    allowed: Callable[[C], bool],
    users: tuple[str, str],
    sign_in_again: Callable[[C, str], object] | None = None,
    sign_out: Callable[[C], object] | None = None,
    copy_session: Callable[[C, C], object] | None = None,
) -> None:
    """Raise ``AssertionError`` if a grant made by ``users[0]`` in one session lets
    ``users[1]``, another session of ``users[0]`` or a new sign-in in the same browser
    (``sign_in_again``) do the guarded action; with ``sign_out``, also if after signing
    out the same browser, a copy of its session taken before the sign-out, or (with
    ``sign_in_again``) the same browser signed in again can.

    The copy is made by ``copy_session(source, target)`` (default
    :func:`copy_cookies`, which knows the test clients of Flask, Django and
    Starlette); a ``TypeError`` says so before anything is checked when the clients
    ``sign_in`` answers are none of these and no ``copy_session`` is given."""
    first, second = users
    if first == second:
        raise ValueError("check_grant_isolation needs two different users")
    if sign_out is not None and not callable(sign_out):
        raise TypeError("check_grant_isolation: `sign_out` must be a function of the client")
    replay = copy_session or copy_cookies
    proved = sign_in(first)
    if sign_out is not None and copy_session is None and _cookie_client(proved) is None:
        raise TypeError(
            "check_grant_isolation: with `sign_out`, the check copies a signed-in"
            f" session, and it cannot copy the cookies of a {type(proved).__name__}:"
            " pass `copy_session(source, target)`, a function that makes the client"
            " `target` hold the session of `source`"
        )
    if allowed(proved):
        raise AssertionError(
            "the guarded action went through right after signing in, before any"
            " re-authentication: turn the tenant flag on (and the policy's sign_in_counts"
            " off) for this check, or `allowed` does not ask for a guarded action"
        )
    reauthenticate(proved)
    if not allowed(proved):
        raise AssertionError(
            "the re-authentication did not let the same session through: `reauthenticate`"
            " did not complete, or `allowed` asks for another action"
        )
    other_user = sign_in(second)
    if allowed(other_user):
        raise AssertionError(f"a re-authentication by {first!r} let {second!r} through")
    other_session = sign_in(first)
    if allowed(other_session):
        raise AssertionError(
            f"a re-authentication in one session of {first!r} let another session of"
            f" {first!r} through"
        )
    if not allowed(proved):
        raise AssertionError("signing in elsewhere took the first session's grant away")
    if sign_in_again is not None:
        sign_in_again(proved, second)
        if allowed(proved):
            raise AssertionError(
                f"after {second!r} signed in in the browser where {first!r} had"
                " re-authenticated, the old grant still let the action through"
            )
    if sign_out is not None:
        _check_sign_out(first, sign_in, reauthenticate, allowed, sign_out, sign_in_again, replay)


def _check_sign_out(
    user: str,
    sign_in: Callable[[str], C],
    reauthenticate: Callable[[C], object],
    allowed: Callable[[C], bool],
    sign_out: Callable[[C], object],
    sign_in_again: Callable[[C, str], object] | None,
    replay: Callable[[C, C], object],
) -> None:
    """Signing out ends the grant: for the browser itself, for a copy of its session
    taken before (its cookies, as someone who read them would replay them) and for
    whoever signs in next in that browser."""
    browser = sign_in(user)
    reauthenticate(browser)
    stolen = sign_in(user)
    replay(browser, stolen)
    if not allowed(stolen):
        raise AssertionError(
            "a copy of the session of a browser that had re-authenticated was refused"
            " before any sign-out: the copy (`copy_session`, by default the cookies) does"
            " not carry the session, so the check cannot tell whether signing out ends it"
        )
    sign_out(browser)
    if allowed(browser):
        raise AssertionError(
            "after signing out, the same browser still did the guarded action:"
            " `sign_out` did not sign out"
        )
    if allowed(stolen):
        raise AssertionError(
            "after signing out, a copy of the session taken before the sign-out still did"
            " the guarded action: the sign-out did not revoke the session's grant (call"
            " stepup's sign_out in it)"
        )
    if sign_in_again is not None:
        sign_in_again(browser, user)
        if allowed(browser):
            raise AssertionError("a grant survived signing out and in again in the same browser")


def check_tenant_admin_isolation(
    *,
    sign_in: Callable[[str], C],
    patch: Callable[[C, str], Any],
    reauthenticate: Callable[[C, Any], object],
    admin: str,
    tenants: tuple[str, str],
) -> None:
    """Raise ``AssertionError`` unless ``admin``, an admin of ``tenants[0]`` only, may
    change ``tenants[0]``'s settings and is refused (403) for ``tenants[1]``'s.

    ``sign_in(admin)`` answers a client signed in as the admin; ``patch(client,
    tenant_id)`` sends the tenant-settings PATCH (stepup's ``/stepup/tenants/<id>``)
    and answers the response (anything with a ``status_code``); when it answers 401
    (re-authentication required), ``reauthenticate(client, response)`` completes the
    re-authentication it asks for and the PATCH is sent again. Both tenants must exist."""
    own, other = tenants
    if own == other:
        raise ValueError("check_tenant_admin_isolation needs two different tenants")
    client = sign_in(admin)
    status = _patch_status(client, own, patch, reauthenticate)
    if not 200 <= status < 300:
        raise AssertionError(
            f"an admin of {own!r} could not change {own!r} (HTTP {status}): is_tenant_admin"
            f" refuses {admin!r} for their own tenant, `reauthenticate` did not complete, or"
            " `patch` does not send the tenant-settings PATCH"
        )
    status = _patch_status(client, other, patch, reauthenticate)
    if 200 <= status < 300:
        raise AssertionError(
            f"is_tenant_admin ignores its tenant_id: an admin of {own!r} changed {other!r}"
        )
    if status != 403:
        raise AssertionError(
            f"the PATCH of {other!r} by an admin of {own!r} answered HTTP {status}, not 403:"
            f" make sure {other!r} exists, and that `patch` sends the tenant-settings PATCH"
        )


def _patch_status(
    client: C,
    tenant_id: str,
    patch: Callable[[C, str], Any],
    reauthenticate: Callable[[C, Any], object],
) -> int:
    """The PATCH's status, after the re-authentication a 401 asks for."""
    response = patch(client, tenant_id)
    if _status(response) == 401:
        reauthenticate(client, response)
        response = patch(client, tenant_id)
    return _status(response)


def _status(response: Any) -> int:
    status = response if isinstance(response, int) else getattr(response, "status_code", None)
    if not isinstance(status, int):
        raise TypeError(
            "check_tenant_admin_isolation: `patch` must answer the response (with a"
            f" `status_code`) or its status, not a {type(response).__name__}"
        )
    return status


def copy_cookies(source: object, target: object) -> None:
    """Make the test client ``target`` hold ``source``'s cookies (a copy), as a browser
    that replays them would. Knows Flask's (Werkzeug's) test client, Django's
    ``Client`` and Starlette's ``TestClient`` (any httpx client), or an object holding
    one of them as ``.client``; raises ``TypeError`` for any other."""
    source_client, target_client = _cookie_client(source), _cookie_client(target)
    if (
        source_client is None
        or target_client is None
        or type(source_client) is not type(target_client)
    ):
        raise TypeError(
            f"cannot copy the cookies of {type(source).__name__} to {type(target).__name__}:"
            " pass `copy_session(source, target)` to check_grant_isolation"
        )
    cookies = _cookies_of(source_client)
    if isinstance(cookies, SimpleCookie):  # Django (a SimpleCookie is a dict too)
        target_client.cookies = copy.deepcopy(cookies)
    elif isinstance(cookies, dict):  # Werkzeug: its jar, keyed by (domain, path, name)
        target_client._cookies = copy.deepcopy(cookies)
    else:  # httpx: Cookies(...) copies the jar
        target_client.cookies = type(cookies)(cookies)


def _cookies_of(client: Any) -> Any:
    """The client's cookie jar: Werkzeug's ``_cookies`` dict, Django's ``SimpleCookie``
    or an httpx ``Cookies`` (it has a ``CookieJar`` as ``jar``); ``None`` otherwise."""
    werkzeug = getattr(client, "_cookies", None)
    if isinstance(werkzeug, dict) and callable(getattr(client, "set_cookie", None)):
        return werkzeug
    cookies = getattr(client, "cookies", None)
    if isinstance(cookies, SimpleCookie) or isinstance(getattr(cookies, "jar", None), CookieJar):
        return cookies
    return None


def _cookie_client(candidate: object) -> Any:
    """``candidate`` if it is a test client whose cookies can be copied, else the one it
    holds as ``.client``; ``None`` when neither is."""
    for client in (candidate, getattr(candidate, "client", None)):
        if client is not None and _cookies_of(client) is not None:
            return client
    return None
