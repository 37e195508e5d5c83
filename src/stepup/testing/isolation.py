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
        )

``allowed(client)`` must ask for a guarded action (the tenant flag on) and answer
whether it went through; ``reauthenticate(client)`` completes a re-authentication in
that client. The check fails with a sentence naming the leak it found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["check_grant_isolation"]

C = TypeVar("C")


def check_grant_isolation(
    *,
    sign_in: Callable[[str], C],
    reauthenticate: Callable[[C], object],
    allowed: Callable[[C], bool],
    users: tuple[str, str],
    sign_in_again: Callable[[C, str], object] | None = None,
    sign_out: Callable[[C], object] | None = None,
) -> None:
    """Raise ``AssertionError`` if a grant made by ``users[0]`` in one session lets
    ``users[1]``, another session of ``users[0]``, a new sign-in in the same browser
    (``sign_in_again``) or the same browser after signing out and in again
    (``sign_out``) do the guarded action."""
    first, second = users
    if first == second:
        raise ValueError("check_grant_isolation needs two different users")
    proved = sign_in(first)
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
        browser = sign_in(first)
        reauthenticate(browser)
        sign_out(browser)
        if sign_in_again is not None:
            sign_in_again(browser, first)
            if allowed(browser):
                raise AssertionError(
                    "a grant survived signing out and in again in the same browser"
                )
