"""Did I guard everything? A check an app runs in its own tests.

It lists the app's routes (Flask's ``app.url_map``, Django's URLconf, Starlette's and
FastAPI's ``app.routes``), reads the action each stepup guard recorded on what it wraps
(:mod:`stepup.integrations.marks`), and compares them with what the app declares::

    from stepup.testing.coverage import assert_guarded

    def test_every_sensitive_route_is_guarded(app):
        assert_guarded(
            app,
            policy=stepup.policy,
            sensitive={"POST /settings/api-key/regenerate": "api_key.regenerate"},
            public={"POST /login", "POST /logout"},
        )

It fails, naming each route, when

- a route the app declares ``sensitive`` (``"METHOD /path"``, ``"/path"`` or the
  endpoint's name, mapped to its action) is missing, has no stepup guard, or is guarded
  for another action;
- a guard names an action the policy does not know;
- with ``strict`` (the default), a route that can change something has no guard and is
  not listed in ``public``: any method but the safe ones (:data:`SAFE_METHODS`: ``GET``,
  ``HEAD``, ``OPTIONS``, ``TRACE``, ``QUERY``), so ``POST`` and ``DELETE`` as much as
  ``PURGE`` or a WebDAV method, and any route whose methods cannot be read (a Django
  function view, a mounted ASGI app). A new form handler cannot slip in unguarded
  without someone saying so.

A ``"METHOD /path"`` key speaks for that method only: a route whose methods cannot be
read answers every method, so only its ``"/path"`` (or its name) speaks for it.

A class-based view (a Starlette ``HTTPEndpoint``, a Django ``View``, a Flask
``MethodView``) is one route per handler it has (``get``, ``post``, ``query``, its own
``options``...; for an ``HTTPEndpoint``, every method the installed Starlette sends to a
handler of the class: older releases send any method to the handler of its name, so
``PROPFIND`` to ``propfind``), each guarded by that handler's own guards and the
class-wide ones (a guarded ``dispatch``, Flask's ``decorators``, ``reauth_action``, a
guard around ``as_view()``): a guarded ``get`` never makes an unguarded ``post`` look
guarded. A Starlette ``WebSocketEndpoint`` is guarded by a guard on its ``on_connect``.
A Django ``reauth_action`` counts only when ``ReauthRequiredMixin.dispatch`` runs: the
mixin after ``View`` in the bases, or without the mixin, is a problem, and so is a
``dispatch`` of the view's own before the mixin, which the check cannot prove calls
``super().dispatch()``. A wrapper around the ``dispatch`` the class had
(``@method_decorator(csrf_exempt, name="dispatch")``, or any decorator that keeps
``__wrapped__``) is taken to call it.

``app`` is a Flask app, a Starlette or FastAPI app (or middleware around one), or a
Django URLconf; anything else (a function wrapping a FastAPI app) is a ``TypeError``
saying what to pass.

stepup's own views (its blueprint, URLconf namespace or mount) are left out: they guard
themselves. A view that calls ``require``/``check`` in its body instead of using a guard
says so with :func:`stepup.integrations.marks.guarded_by`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import UnknownActionError
from ..integrations.marks import actions_of
from ..policy import Policy

__all__ = [
    "SAFE_METHODS",
    "GuardProblem",
    "RouteInfo",
    "assert_guarded",
    "check_guards",
    "django_routes",
    "flask_routes",
    "routes_of",
    "starlette_routes",
]

#: The methods that change nothing (RFC 9110's safe methods, and ``QUERY``, safe in its
#: draft). Every other method, ``POST``, ``PURGE``, a WebDAV ``PROPPATCH`` or a name an
#: app made up, can change something: unguarded, strict mode wants it declared ``public``.
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "QUERY"})
#: What a route's methods leave out: the ``HEAD`` and ``OPTIONS`` frameworks answer by
#: themselves (``HEAD`` through the ``GET`` view). A class's own ``head`` or ``options``
#: handler is a route of its own all the same.
_IGNORED_METHODS: Final = frozenset({"HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One route: its path, methods (empty: not known, e.g. a Django function view),
    endpoint name, the actions its guards enforce, whether it is stepup's own, and the
    problems found in how it is guarded."""

    path: str
    methods: frozenset[str]
    name: str
    actions: tuple[str, ...] = ()
    stepup_own: bool = False
    view: Any = field(default=None, compare=False, repr=False)
    #: What is wrong with how the route is guarded, beyond its actions (a Django view's
    #: ``reauth_action`` whose mixin never runs): each one is a problem of the check.
    problems: tuple[str, ...] = ()

    def label(self) -> str:
        methods = ",".join(sorted(self.methods)) if self.methods else "ANY"
        return f"{methods} {self.path}" + (f" ({self.name})" if self.name else "")

    def matches(self, key: str) -> bool:
        """Is ``key`` (``"METHOD /path"``, ``"/path"`` or an endpoint name) this route?
        A ``"METHOD /path"`` key is that method only: it never stands for a route whose
        methods are not known (which answers that method and every other)."""
        if key == self.path or (self.name and key == self.name):
            return True
        method, _, path = key.partition(" ")
        return path == self.path and method.upper() in self.methods

    @property
    def can_change_things(self) -> bool:
        """Does it answer a method other than the safe ones (or methods not known)?"""
        return not self.methods or bool(self.methods - SAFE_METHODS)


@dataclass(frozen=True, slots=True)
class GuardProblem:
    """One thing the check found, with the sentence that explains it."""

    route: str
    message: str

    def __str__(self) -> str:
        return f"{self.route}: {self.message}"


# Listing routes, framework by framework ------------------------------------------------


def flask_routes(app: Any) -> list[RouteInfo]:
    """Every rule of a Flask app's ``url_map``; a ``MethodView``'s rule gives one route
    per handler (``get``, ``post``...), each with that handler's guards."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions.get(rule.endpoint)
        methods = frozenset(rule.methods or ()) - _IGNORED_METHODS
        own = rule.endpoint.startswith("stepup.") or rule.endpoint == "static"
        cls = getattr(view, "view_class", None)
        if cls is None:
            handlers: list[tuple[frozenset[str], tuple[str, ...]]] = [(methods, actions_of(view))]
        else:
            # ``decorators`` wrap the view function; a guarded ``dispatch_request`` or
            # a mark on the class guards every method.
            shared = (*actions_of(view), *actions_of(cls), *actions_of(cls.dispatch_request))
            # A handler of the class's own for HEAD or OPTIONS answers those too.
            candidates = frozenset(rule.methods or ()) if _is_method_view(cls) else frozenset()
            handlers = _per_handler(cls, candidates, shared, methods)
        for answered, actions in handlers:
            found.append(RouteInfo(rule.rule, answered, rule.endpoint, actions, own, view))
    return found


def _is_method_view(cls: type) -> bool:
    """A Flask ``MethodView`` sends each method to its own handler; a plain ``View``
    sends every method to ``dispatch_request``."""
    from flask.views import MethodView

    return issubclass(cls, MethodView)


def _per_handler(
    cls: type, candidates: Iterable[str], shared: Iterable[str], fallback: frozenset[str]
) -> list[tuple[frozenset[str], tuple[str, ...]]]:
    """A class-based view's routes: one per method among ``candidates`` it has a handler
    for (``get``, ``post``...), each guarded by the class-wide actions (``shared``) and
    that handler's own. A class with no such handler is one route answering
    ``fallback``, guarded by the class-wide actions."""
    common = tuple(dict.fromkeys(shared))
    found = []
    for method in sorted(candidates):
        handler = getattr(cls, method.lower(), None)
        if callable(handler):
            actions = tuple(dict.fromkeys((*common, *actions_of(handler))))
            found.append((frozenset({method}), actions))
    return found or [(fallback, common)]


def django_routes(urlconf: Any = None, *, stepup_namespace: str = "stepup") -> list[RouteInfo]:
    """Every pattern of the Django URLconf (the project's, or ``urlconf``: a module, its
    dotted name, or a list of patterns), with the path written as Django's patterns
    joined from the root, with a leading ``/`` (``/api-key/<int:pk>/``)."""
    from django.urls import URLPattern, URLResolver, get_resolver

    found: list[RouteInfo] = []

    def walk(patterns: Iterable[Any], prefix: str, own: bool, namespace: str) -> None:
        for entry in patterns:
            here = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                space = entry.namespace or ""
                full = f"{namespace}:{space}" if namespace and space else (space or namespace)
                walk(entry.url_patterns, here, own or space == stepup_namespace, full)
            elif isinstance(entry, URLPattern):
                view = entry.callback
                name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
                problems = _reauth_action_problems(getattr(view, "view_class", None))
                for methods, actions in _django_view(view):
                    found.append(
                        RouteInfo("/" + here, methods, name or "", actions, own, view, problems)
                    )

    patterns = urlconf if isinstance(urlconf, list | tuple) else get_resolver(urlconf).url_patterns
    walk(patterns, "", False, "")
    return found


def _django_view(view: Any) -> list[tuple[frozenset[str], tuple[str, ...]]]:
    """A view's routes: a function view is one, answering any method; a class-based view
    one per handler (``get``, ``post``...), each with that handler's guards and the
    class-wide ones (a guarded ``dispatch`` or ``as_view()``, ``reauth_action`` when
    ``ReauthRequiredMixin.dispatch`` runs, a mark on the class)."""
    cls = getattr(view, "view_class", None)
    if cls is None:
        return [(frozenset(), actions_of(view))]
    from django.views import View

    shared = [*actions_of(view), *actions_of(cls), *actions_of(cls.dispatch)]
    action = _reauth_action(cls)
    if action and not _reauth_action_problems(cls):
        shared.append(action)
    names = getattr(cls, "http_method_names", ())
    # ``head`` is the class's own when it has one (else ``get`` answers HEAD); ``options``
    # is Django's, which answers only which methods are allowed, unless the class has one.
    django_options = View.options
    candidates = {
        m.upper() for m in names if m != "options" or getattr(cls, m, None) is not django_options
    }
    return _per_handler(cls, candidates, shared, frozenset())  # none: ``dispatch`` answers


#: Django's own ``dispatch`` methods known to call ``super().dispatch()`` once they let
#: the request through, so a ``ReauthRequiredMixin`` after them in the MRO still runs.
_DJANGO_DISPATCHES_CALLING_SUPER: Final = frozenset(
    {
        "django.contrib.auth.mixins.LoginRequiredMixin",
        "django.contrib.auth.mixins.PermissionRequiredMixin",
        "django.contrib.auth.mixins.UserPassesTestMixin",
    }
)


def _reauth_action(cls: type) -> str:
    action = getattr(cls, "reauth_action", "")
    return action if isinstance(action, str) else ""


def _reauth_action_problems(cls: type | None) -> tuple[str, ...]:
    """Why a class-based view's ``reauth_action`` guards nothing, or cannot be shown to:
    only ``ReauthRequiredMixin.dispatch`` enforces it, so it counts when the ``dispatch``
    the class uses is the mixin's, or reaches it through dispatches known to call
    ``super().dispatch()``. A ``dispatch`` of the app's own before the mixin may or may
    not call ``super()``: the check cannot prove it does, so it says so (marking that
    ``dispatch`` with ``guarded_by(action)`` vouches that it does)."""
    if cls is None or not _reauth_action(cls):
        return ()
    from ..integrations.django.mixins import ReauthRequiredMixin

    action = _reauth_action(cls)
    mro = cls.__mro__
    if ReauthRequiredMixin not in mro:
        return (_NEVER_RUNS,)
    mixin_at = mro.index(ReauthRequiredMixin)
    before = [k for k in mro[:mixin_at] if "dispatch" in vars(k)]
    unknown = [
        k
        for k in before
        if _qualified(k) not in _DJANGO_DISPATCHES_CALLING_SUPER
        and not _wraps_a_dispatch_of(vars(k)["dispatch"], mro)
    ]
    if not unknown or action in actions_of(getattr(cls, "dispatch", None)):
        return ()
    if any(_qualified(k) == "django.views.generic.base.View" for k in unknown):
        return (_NEVER_RUNS,)
    names = ", ".join(f"{k.__qualname__}.dispatch" for k in unknown)
    return (
        f"sets reauth_action but {names} comes before ReauthRequiredMixin.dispatch and the"
        " check cannot prove it calls super().dispatch(): unproven, so not counted as"
        " guarded (call super().dispatch() in it and mark it with"
        f" @guarded_by({action!r}), or guard the handlers)",
    )


def _wraps_a_dispatch_of(dispatch: Any, mro: tuple[type, ...]) -> bool:
    """Is ``dispatch`` a wrapper around another ``dispatch`` of the class (what
    ``@method_decorator(csrf_exempt, name="dispatch")`` puts on the class: a function
    calling the ``dispatch`` the class had, its ``__wrapped__``)? Then it is that
    ``dispatch`` which runs, judged in its own place in the MRO; a wrapper is taken to
    call what it wraps, as middleware is taken to pass requests through. A ``dispatch``
    the app wrote itself (wrapped or not) is its own code: not this."""
    inner = inspect.unwrap(dispatch) if callable(dispatch) else dispatch
    if inner is dispatch:
        return False
    return any(vars(k).get("dispatch") is inner for k in mro)


_NEVER_RUNS: Final = (
    "sets reauth_action but ReauthRequiredMixin.dispatch never runs (put the mixin first in"
    " the bases)"
)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def starlette_routes(app: Any, *, stepup_mount: str = "stepup") -> list[RouteInfo]:
    """Every route of a Starlette or FastAPI app, mounts followed (FastAPI dependencies,
    however deep, count as guards). Middleware around the app, or around a ``Mount``'s
    or ``Host``'s app, is looked through (its ``.app``) to the router inside; a mount
    whose routes cannot be seen (a plain ASGI app, a WSGI app) is one route answering
    any method, with no guard, so strict mode names it unless it is declared ``public``.
    A mounted ``StaticFiles`` answers only ``GET``."""
    found: list[RouteInfo] = []

    def walk(
        routes: Iterable[Any], prefix: str, own: bool, inherited: tuple[str, ...] = ()
    ) -> None:
        for route in routes:
            included = _included_router(route)
            if included is not None:  # FastAPI's include_router: its prefix, its guards
                router, more_prefix, guards = included
                walk(router.routes, prefix + more_prefix, own, (*inherited, *guards))
                continue
            path = prefix + getattr(route, "path", "")
            if not hasattr(route, "endpoint") and hasattr(route, "app"):  # Mount, Host
                mine = own or getattr(route, "name", None) == stepup_mount
                inner = _behind(route.app)
                if hasattr(inner, "routes"):
                    walk(inner.routes, path, mine, inherited)
                else:
                    found.append(_unseen(route, inner, path, mine))
                continue
            sub = getattr(route, "routes", None)
            if sub is not None and not hasattr(route, "endpoint"):  # a Router
                mine = own or getattr(route, "name", None) == stepup_mount
                walk(sub, path, mine, inherited)
                continue
            endpoint = getattr(route, "endpoint", None)
            if endpoint is None:  # a kind of route this kit cannot read: say so, loudly
                found.append(_unseen(route, route, path, own))
                continue
            methods = frozenset(getattr(route, "methods", None) or ()) - _IGNORED_METHODS
            actions = [*inherited, *actions_of(endpoint), *_dependency_actions(route)]
            name = getattr(route, "name", "") or ""
            if inspect.isclass(endpoint) and _is_websocket_endpoint(endpoint):
                # Its ``on_connect`` runs first, for every connection: a guard there
                # guards the connection (the other hooks run only once it is accepted).
                actions += actions_of(getattr(endpoint, "on_connect", None))
            elif inspect.isclass(endpoint):  # an HTTPEndpoint: one route per handler
                routed = frozenset(getattr(route, "methods", None) or ())
                candidates = _endpoint_handlers(endpoint)
                if routed:  # the route answers only these (405 for the others)
                    candidates = [m for m in candidates if m in routed]
                for each, guards in _per_handler(endpoint, candidates, actions, methods):
                    found.append(RouteInfo(path, each, name, guards, own, endpoint))
                continue
            found.append(
                RouteInfo(path, methods, name, tuple(dict.fromkeys(actions)), own, endpoint)
            )

    inner = _behind(app)
    if hasattr(inner, "routes"):
        walk(inner.routes, "", False)
    else:
        found.append(RouteInfo("/", frozenset(), "", (), False, inner))
    return found


def _is_websocket_endpoint(cls: type) -> bool:
    from starlette.endpoints import WebSocketEndpoint

    return issubclass(cls, WebSocketEndpoint)


def _endpoint_handlers(cls: type) -> list[str]:
    """The methods an ``HTTPEndpoint`` class has a handler for: Starlette sends a request
    to the attribute named as its method, lowercased (``QUERY`` to ``query``; before
    Starlette 1.x, any method at all, ``PROPFIND`` to ``propfind``), so every callable
    of the class but ``HTTPEndpoint``'s own plumbing is asked whether the installed
    Starlette would send its method there."""
    from starlette.endpoints import HTTPEndpoint

    plumbing = set(dir(HTTPEndpoint))
    return [
        name.upper()
        for name in dir(cls)
        if name not in plumbing
        and name.isascii()
        and name == name.lower()
        and callable(getattr(cls, name, None))
        and _starlette_dispatches(name)
    ]


class _ReachedError(Exception):
    """The probe's handler ran."""


class _RefusedError(Exception):
    """The probe's request was answered without its handler (a 405)."""


@functools.cache
def _starlette_dispatches(name: str) -> bool:
    """Does the installed Starlette's ``HTTPEndpoint`` send a request of method
    ``NAME`` to a handler called ``name``? Asked of a class of this module's own (the
    app's class is never made or called), whose handler raises as soon as it runs; a
    request it does not reach is answered 405 through ``send``, which raises too. Any
    other outcome (a Starlette that works otherwise) counts as reached: listed, the
    handler is checked rather than missed."""
    from starlette.endpoints import HTTPEndpoint
    from starlette.exceptions import HTTPException

    async def handler(self: Any, request: Any) -> Any:
        raise _ReachedError

    async def receive() -> Any:
        raise _RefusedError

    async def send(message: Any) -> None:
        raise _RefusedError

    probe = type("_Probe", (HTTPEndpoint,), {name: handler})
    scope = {
        "type": "http",
        "method": name.upper(),
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [],
    }
    running = probe(scope, receive, send).dispatch()
    try:
        running.send(None)
    except _RefusedError:
        return False
    except HTTPException as refused:  # a Starlette that raises its 405 anyway
        return refused.status_code != 405
    except Exception:  # _ReachedError, or anything this probe did not foresee
        return True
    running.close()  # it waited for something: not foreseen either
    return True


#: How many ``.app`` links of middleware are followed at most (a cycle ends sooner).
_MAX_MIDDLEWARE: Final = 64


def _behind(app: Any) -> Any:
    """What answers behind ``app``'s middleware: the first app along its ``.app`` chain
    that has ``routes`` (a Router, a Starlette or FastAPI app), else the last one (a
    plain ASGI app). Each middleware is taken to pass requests through."""
    seen: set[int] = set()
    while not hasattr(app, "routes") and id(app) not in seen and len(seen) < _MAX_MIDDLEWARE:
        seen.add(id(app))
        inner = getattr(app, "app", None)
        if inner is None:
            break
        app = inner
    return app


def _unseen(route: Any, app: Any, path: str, own: bool) -> RouteInfo:
    """A ``Mount`` or ``Host`` whose routes cannot be read: one route for all it
    answers, with no guard; its methods are not known (so it can change something),
    but for a ``StaticFiles``, which answers only ``GET`` (and ``HEAD``)."""
    name = getattr(route, "name", None) or getattr(route, "host", "") or ""
    methods = frozenset({"GET"}) if _is_static_files(app) else frozenset()
    return RouteInfo(path or "/", methods, name, (), own, app)


def _is_static_files(app: Any) -> bool:
    """Starlette's own ``StaticFiles`` (a subclass may answer other methods)."""
    try:
        from starlette.staticfiles import StaticFiles
    except ImportError:  # pragma: no cover - starlette is what mounted it
        return False
    return (
        isinstance(app, StaticFiles)
        and type(app).__call__ is StaticFiles.__call__
        and type(app).get_response is StaticFiles.get_response
    )


def _included_router(route: Any) -> tuple[Any, str, tuple[str, ...]] | None:
    """A router FastAPI included (``app.include_router(router, prefix=...,
    dependencies=[...])``, kept as a route of its own since FastAPI 0.12x): the router,
    the include's prefix and the stepup actions of the include's dependencies; ``None``
    for any other route."""
    router, context = (
        getattr(route, "original_router", None),
        getattr(route, "include_context", None),
    )
    if router is None or context is None or not hasattr(router, "routes"):
        return None
    guards = tuple(
        action
        for depends in getattr(context, "dependencies", ()) or ()
        for action in actions_of(getattr(depends, "dependency", None))
    )
    return router, str(getattr(context, "prefix", "") or ""), guards


def _dependency_actions(route: Any) -> list[str]:
    """The actions of stepup dependencies anywhere in a FastAPI route's dependency tree."""
    actions: list[str] = []
    pending = [getattr(route, "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is None:
            continue
        actions += actions_of(getattr(dependant, "call", None))
        pending.extend(getattr(dependant, "dependencies", ()))
    return actions


def routes_of(app: Any = None) -> list[RouteInfo]:
    """The routes of a Flask or Starlette/FastAPI app, or of a Django URLconf (``None``:
    the project's; a module or object with ``urlpatterns``, its dotted name, or a list
    of patterns). Anything else is a ``TypeError`` saying what to pass: an app the
    check cannot see into (a function wrapping a FastAPI app) would list nothing."""
    if app is not None and hasattr(app, "url_map") and hasattr(app, "view_functions"):
        return flask_routes(app)
    if _is_django_urlconf(app):
        return django_routes(app)
    if hasattr(_behind(app), "routes"):
        return starlette_routes(app)
    raise TypeError(
        f"cannot list the routes of {_kind(app)}: pass the Starlette or FastAPI app itself"
        " (or middleware around it, with .app), not a function that wraps it; the Flask"
        " app; or a Django URLconf (None for the project's, a module with urlpatterns, or"
        " its dotted name)"
    )


def _is_django_urlconf(app: Any) -> bool:
    """``None`` or a dotted name (Django finds the URLconf), a module or object with
    ``urlpatterns``, or a list of Django's patterns."""
    if app is None or isinstance(app, str) or hasattr(app, "urlpatterns"):
        return True
    if not isinstance(app, list | tuple) or not app:
        return False
    try:
        from django.urls import URLPattern, URLResolver
    except ImportError:
        return False
    return all(isinstance(entry, URLPattern | URLResolver) for entry in app)


def _kind(app: Any) -> str:
    """What ``app`` is, for a message: its type, never its value."""
    kind = type(app)
    named = getattr(app, "__qualname__", None) if callable(app) else None
    what = f"{kind.__module__}.{kind.__qualname__}"
    return f"{what} {named!r}" if isinstance(named, str) else what


# The check ---------------------------------------------------------------------------


def check_guards(
    routes: Iterable[RouteInfo],
    policy: Policy,
    *,
    sensitive: Mapping[str, str] | None = None,
    public: Iterable[str] = (),
    strict: bool = True,
    include_stepup: bool = False,
) -> list[GuardProblem]:
    """Every problem found (empty: all guarded as declared). See the module docstring."""
    listed = [r for r in routes if include_stepup or not r.stepup_own]
    problems: list[GuardProblem] = []
    declared = dict(sensitive or {})
    public_keys = set(public)
    for key, action in declared.items():
        if action not in policy:
            problems.append(
                GuardProblem(key, f"is declared for {action!r}, which the policy does not know")
            )
        matched = [r for r in listed if r.matches(key)]
        if not matched:
            problems.append(
                GuardProblem(
                    key, "is declared sensitive but no route matches it" + _hint(key, listed)
                )
            )
        for route in matched:
            if not route.actions and route.problems:
                continue  # its own problems, listed below, say why it is unguarded
            if not route.actions:
                problems.append(
                    GuardProblem(
                        route.label(),
                        f"is for the sensitive action {action!r} but has no stepup guard",
                    )
                )
            elif action not in route.actions:
                guards = ", ".join(repr(a) for a in route.actions)
                problems.append(
                    GuardProblem(route.label(), f"is for {action!r} but is guarded for {guards}")
                )
    for key in public_keys:
        if not any(r.matches(key) for r in listed):
            problems.append(
                GuardProblem(key, "is declared public but no route matches it" + _hint(key, listed))
            )
    for route in listed:
        problems += [GuardProblem(route.label(), problem) for problem in route.problems]
        for action in route.actions:
            try:
                policy.rule_for(action)
            except UnknownActionError:
                problems.append(
                    GuardProblem(route.label(), f"is guarded for {action!r}, an unknown action")
                )
        if (
            strict
            and not route.actions
            and not route.problems
            and route.can_change_things
            and not any(route.matches(k) for k in public_keys)
            and not any(route.matches(k) for k in declared)
        ):
            problems.append(
                GuardProblem(
                    route.label(),
                    "can change something but has no stepup guard: guard it, or list it in"
                    " `public` if it needs none",
                )
            )
    return problems


def _hint(key: str, routes: Iterable[RouteInfo]) -> str:
    """Why a ``"METHOD /path"`` key matches nothing when a route of that path answers
    methods that cannot be read: the key would speak for one method of many."""
    method, _, path = key.partition(" ")
    if not path:
        return ""
    for route in routes:
        if route.path == path and not route.methods:
            return (
                f" ({route.label()} answers every method, as far as the check can tell:"
                f" {method.upper()} alone cannot speak for it; declare it as {path!r})"
            )
    return ""


def assert_guarded(
    app: Any,
    policy: Policy,
    *,
    sensitive: Mapping[str, str] | None = None,
    public: Iterable[str] = (),
    strict: bool = True,
    include_stepup: bool = False,
) -> list[RouteInfo]:
    """Fail (``AssertionError``, one line per problem) unless the app's routes are guarded
    as declared; answers the routes it checked. ``app``: a Flask or Starlette/FastAPI
    app, a Django URLconf (``None``: the project's), or a list of :class:`RouteInfo`."""
    if isinstance(app, list) and all(isinstance(r, RouteInfo) for r in app):
        routes: list[RouteInfo] = app
    else:
        routes = routes_of(app)
    problems = check_guards(
        routes,
        policy,
        sensitive=sensitive,
        public=public,
        strict=strict,
        include_stepup=include_stepup,
    )
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise AssertionError(f"stepup guard coverage: {len(problems)} problem(s)\n{lines}")
    return routes
