"""The mark a guard leaves on what it guards, for the coverage check.

Every stepup guard (Flask's ``reauth_required``, Django's ``reauth_required`` and
``ReauthRequiredMixin``, Starlette's ``requires_reauth``, FastAPI's ``require_reauth``
dependency) records the action it enforces on the view, class or dependency it wraps,
so :mod:`stepup.testing.coverage` can list an app's routes and say which are guarded,
for which action, without calling them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Final, TypeVar

__all__ = ["ACTION_ATTR", "actions_of", "guarded_by", "mark"]

#: The attribute holding the actions a guard enforces (a tuple: guards may stack).
ACTION_ATTR: Final = "__stepup_actions__"


def mark(target: Any, action: str) -> None:
    """Record that ``target`` is guarded by ``action`` (kept when decorators stack)."""
    previous = tuple(getattr(target, ACTION_ATTR, ()))
    actions = (*previous, action) if action not in previous else previous
    with contextlib.suppress(AttributeError, TypeError):  # a builtin: nothing to mark
        setattr(target, ACTION_ATTR, actions)


def actions_of(target: Any) -> tuple[str, ...]:
    """The actions guards recorded on ``target`` (``()``: none)."""
    found = getattr(target, ACTION_ATTR, ())
    return tuple(found) if isinstance(found, tuple) else ()


F = TypeVar("F")


def guarded_by(action: str) -> Callable[[F], F]:
    """Say that a view guards itself (it calls ``require`` or ``check`` for ``action`` in
    its body), so the coverage check counts it as guarded. It changes nothing else:
    the view must still make the call."""

    def decorate(view: F) -> F:
        mark(view, action)
        return view

    return decorate
