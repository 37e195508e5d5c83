"""Shared by the three frameworks' tests of a field of stepup's own forms sent more than
once (``code=<wrong>&code=<right>``): Werkzeug's form reads the first value, Django's
and Starlette's the last, so each framework once let through a form another refused.
Every framework now refuses it as malformed, with that field's error, 400, whichever
value comes first."""

from __future__ import annotations

#: The two orders a right and a wrong value can come in.
ORDERS = ("wrong first", "right first")

CODE_ERROR = "Enter the code from your authenticator app (digits only)."
RECOVERY_ERROR = "That is not a recovery code."
PASSWORD_ERROR = "That password is not right."
NAME_ERROR = "Give the app a name of 1 to 64 characters, without control characters."
WRONG_RECOVERY = "aaaa-bbbb-cccc-dddd-eeee-ffff"


def both(order: str, right: str, wrong: str) -> list[str]:
    """The field's two values, in ``order``."""
    return [wrong, right] if order == "wrong first" else [right, wrong]


def wrong_code(right: str) -> str:
    """A well-formed code that is not ``right``."""
    return "000000" if right != "000000" else "111111"


def assert_refused(status: int, page: str, error: str) -> None:
    """The form again, 400, with the field's error."""
    assert status == 400, (status, page[:300])
    assert error in page, page[:2000]
