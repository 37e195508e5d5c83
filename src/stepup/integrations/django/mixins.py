"""Protect a class-based view (sync or async handlers)::

    class RegenerateKey(ReauthRequiredMixin, View):
        reauth_action = "api_key.regenerate"

The action is checked against the policy when the class is defined (at import), and so
is the order of the bases: the mixin after ``View`` would never run (refused). What the
handlers answer is sent ``Cache-Control: private, no-store``: no cache keeps it.
Override :meth:`get_reauth_context` for rules with a condition, and
:meth:`get_reauth_transaction` for a rule bound to one transaction.

The guard runs for the requests that reach the class's own handlers (``get``, ``post``,
``head``, and an ``options`` it defines; HEAD on a class with ``get`` alone is its
``get``): Django's automatic OPTIONS answer and its 405 for a method the class does not
handle run no code of the app, and are answered as they are by Flask's or Starlette's
routing, with no re-authentication asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Final

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.views import View

from ...policy import Context
from ..transaction import Transaction
from ._request import stepup_for
from ._web import uncacheable_response
from .services import validate_action, validate_transaction

__all__ = ["ReauthRequiredMixin"]

#: What ``View.dispatch`` calls without any code of the app: the automatic OPTIONS
#: answer (the ``Allow`` header) and the 405 for a method the class does not handle.
_DJANGOS_OWN_ANSWERS = (View.options, View.http_method_not_allowed)


class ReauthRequiredMixin:
    """Put it before ``View`` (or a generic view) in the bases."""

    reauth_action: ClassVar[str] = ""
    #: Where a non-GET request comes back after re-authenticating (default: the page the
    #: form was on); a path, or a callable of the request.
    reauth_return_to: ClassVar[str | Callable[[HttpRequest], str] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _refuse_view_first(cls)
        if "reauth_action" in cls.__dict__:
            validate_action(cls.reauth_action)
            validate_transaction(cls.reauth_action, cls._transaction_of(cls))

    @staticmethod
    def _transaction_of(cls: type) -> Any:
        """The class's own ``get_reauth_transaction``, when it overrides it."""
        found = cls.get_reauth_transaction  # type: ignore[attr-defined]
        own = found is not ReauthRequiredMixin.get_reauth_transaction
        return found if own else None

    def get_reauth_context(self, request: HttpRequest) -> Context | None:
        """The context for the rule's condition (e.g. ``{"workspace_type": "full"}``)."""
        return None

    def get_reauth_transaction(self, request: HttpRequest) -> Transaction:
        """What a transaction-bound action is about to do: the parameters that name its
        target (``self.kwargs``) and a description for the re-auth page."""
        raise ImproperlyConfigured(
            f"{type(self).__name__} must override get_reauth_transaction"
            f" ({self.reauth_action!r} is bound to one transaction)"
        )

    def _transaction(self) -> Callable[[HttpRequest], Transaction] | None:
        if self._transaction_of(type(self)) is None:
            return None
        return self.get_reauth_transaction

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        action = self.reauth_action
        if not action:
            raise ImproperlyConfigured(f"{type(self).__name__} must set reauth_action")
        parent: Any = super()
        if not self._runs_a_handler(request):
            return parent.dispatch(request, *args, **kwargs)
        if getattr(self, "view_is_async", False):
            return self._dispatch_async(request, parent, *args, **kwargs)
        refusal = stepup_for(request).guard(
            action, self.get_reauth_context, self._return_to(), transaction=self._transaction()
        )
        if refusal is not None:
            return refusal
        return uncacheable_response(parent.dispatch(request, *args, **kwargs))

    def _runs_a_handler(self, request: HttpRequest) -> bool:
        """Would ``View.dispatch`` call code of this class for ``request``? It picks the
        handler the way Django does (``http_method_names``, then the attribute named by
        the method, which ``View.setup`` set for HEAD from ``get``); only Django's own
        OPTIONS answer and 405, not overridden, are no handler of the app."""
        if not _django_dispatches_next(type(self)):
            return True  # another dispatch may pick any handler: always guard
        view: Any = self
        method = (request.method or "").lower()
        handler = view.http_method_not_allowed
        if method in view.http_method_names:
            handler = getattr(view, method, handler)
        return getattr(handler, "__func__", handler) not in _DJANGOS_OWN_ANSWERS

    async def _dispatch_async(
        self, request: HttpRequest, parent: Any, *args: Any, **kwargs: Any
    ) -> Any:
        refusal = await stepup_for(request).aguard(
            self.reauth_action, self.get_reauth_context, self._return_to(), self._transaction()
        )
        if refusal is not None:
            return refusal
        return uncacheable_response(await parent.dispatch(request, *args, **kwargs))

    def _return_to(self) -> str | Callable[[HttpRequest], str] | None:
        return type(self).reauth_return_to


def _refuse_view_first(cls: type) -> None:
    """``View.dispatch`` calls the handler and never ``super().dispatch``: with ``View``
    (or a generic view) before this mixin in the bases, the mixin's ``dispatch`` never
    runs and every request is served unguarded. Refused when the class is defined."""
    mro = cls.__mro__
    if View in mro and mro.index(View) < mro.index(ReauthRequiredMixin):
        bases = ", ".join(base.__name__ for base in cls.__bases__)
        raise ImproperlyConfigured(
            f"{cls.__qualname__}({bases}): ReauthRequiredMixin comes after View, whose"
            " dispatch never calls it, so the view would run unguarded; put the mixin"
            f" first: class {cls.__name__}(ReauthRequiredMixin, ...)"
        )


def _django_dispatches_next(cls: type) -> bool:
    """Is ``View.dispatch`` the next ``dispatch`` after this mixin's? Only then does
    Django pick the handler from the method (a class between them, like an AJAX mixin's
    ``post_ajax`` or an ``X-HTTP-Method-Override`` mixin, may pick any of the class's
    code for any method, so its requests are always guarded)."""
    mro = cls.__mro__
    for later in mro[mro.index(ReauthRequiredMixin) + 1 :]:
        named = f"{later.__module__}.{later.__qualname__}"
        if "dispatch" in vars(later) and named not in _CHECK_THEN_SUPER:
            return later is View
    return False


#: Django's access mixins, by name (importing them needs the apps loaded): their
#: ``dispatch`` refuses or calls ``super().dispatch`` unchanged, picking no handler, so
#: Django still picks it from the method.
_CHECK_THEN_SUPER: Final = frozenset(
    {
        "django.contrib.auth.mixins.LoginRequiredMixin",
        "django.contrib.auth.mixins.PermissionRequiredMixin",
        "django.contrib.auth.mixins.UserPassesTestMixin",
    }
)
