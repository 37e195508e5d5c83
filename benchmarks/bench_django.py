"""The cost of a protected Django view against an unprotected one, in the same project and run.

Both views return the same small JSON body through Django's test ``Client``, for a
signed-in user of a tenant with ``sensitive_actions_reauth`` on, through the same
middleware (sessions in the local-memory cache, ``StepupMiddleware``). The protected one
is behind ``@reauth_required("api_key.read")`` and the user holds a fresh grant, so every
call is a full, allowed check: subject from the session, tenant, policy rule, tenant and
grant from the memory store. Every response is checked to be a 200.

Reading the session is most of the difference, and any view of a signed-in user pays it
(to know who is signed in), so the protected view is also compared with an unprotected
view that reads the session's user. A last line shows what ``StepupMiddleware`` itself
costs an unprotected view.

    .venv/bin/python benchmarks/bench_django.py [--rounds 30] [--inner 500]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import include, path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Comparison, compare

from stepup.adapters.storage.memory import MemoryStore
from stepup.reauth import Allowed, AllowReason
from stepup.subject import Subject
from stepup.testing import SettableClock

TENANT = "acme"
FLAG_ON = {"feature_flags": {"sensitive_actions_reauth": True}}
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"
STEPUP = "stepup.integrations.django.middleware.StepupMiddleware"


def load_subject(request: HttpRequest) -> Subject | None:
    user_id = request.session.get("user_id")
    return Subject(user_id, request.session["_stepup_sid"]) if user_id else None


def tenant(request: HttpRequest) -> str:
    return TENANT


def unprotected(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"api_key": "key-123"})


def unprotected_user(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"api_key": "key-123", "user": request.session.get("user_id")})


def _protected(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"api_key": "key-123"})


urlpatterns: list[Any] = []


def _configure() -> None:
    """A minimal project when run as a script (under pytest the tests' project is used)."""
    if settings.configured:
        return
    settings.configure(
        SECRET_KEY="bench-secret-key-bench-secret-key-bench-secret-key",
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            "stepup.integrations.django",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        USE_TZ=True,
    )
    django.setup()


@contextmanager
def project(store: MemoryStore, clock: SettableClock) -> Iterator[None]:
    """The benchmark's settings: this module's URLs, cached sessions, the memory store."""
    from django.test import override_settings

    from stepup.integrations.django.decorators import reauth_required

    module = sys.modules[__name__]
    with override_settings(
        ROOT_URLCONF=module,
        MIDDLEWARE=[SESSION, STEPUP],
        SESSION_ENGINE="django.contrib.sessions.backends.cache",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        STEPUP={
            "STORE": store,
            "CLOCK": clock,
            "SUBJECT_LOADER": load_subject,
            "TENANT_LOADER": tenant,
            "PASSWORD_HASH_LOADER": lambda user_id: None,
        },
    ):
        module.urlpatterns[:] = [
            path("open/", unprotected),
            path("open-user/", unprotected_user),
            path("protected/", reauth_required("api_key.read")(_protected)),
            path("stepup/", include("stepup.integrations.django.urls")),
        ]
        yield


def _signed_in(user_id: str, sid: str) -> Any:
    from django.test import Client

    client = Client()
    session = client.session  # saved in the cache, its key set as the cookie
    session["user_id"] = user_id
    session["_stepup_sid"] = sid
    session.save()
    return client


def scenario() -> dict[str, Callable[[], object]]:
    """The calls to time, by name (the benchmark's settings must be active)."""
    from django.test import override_settings

    from stepup.integrations.django.services import get_stepup

    stepup = get_stepup()
    stepup.tenant_settings.ensure(TENANT, FLAG_ON)
    bob = Subject("bob", "bench-session")
    stepup.reauth.record(bob, ["pwd"])
    decision = stepup.reauth.check(bob, "api_key.read", TENANT)
    assert isinstance(decision, Allowed), decision
    assert decision.reason is AllowReason.FRESH_GRANT, decision

    client = _signed_in("bob", "bench-session")
    # Without a grant the protected view must refuse: the benchmark measures a real check.
    assert _signed_in("mallory", "other-session").get("/protected/").status_code == 303
    with override_settings(MIDDLEWARE=[SESSION]):
        plain = _signed_in("bob", "bench-session")
        assert plain.get("/open/").status_code == 200  # its handler keeps this middleware

    def call(on: Any, url: str) -> Callable[[], Any]:
        def get() -> Any:
            response = on.get(url)
            assert response.status_code == 200, response.status_code
            return response

        return get

    return {
        "protected": call(client, "/protected/"),
        "unprotected": call(client, "/open/"),
        "unprotected + session": call(client, "/open-user/"),
        "unprotected, no middleware": call(plain, "/open/"),
    }


#: (what is measured, against what) by name in :func:`scenario`.
PAIRS = (
    ("protected", "unprotected"),
    ("protected", "unprotected + session"),
    ("unprotected", "unprotected, no middleware"),
)


def run(rounds: int, inner: int, warmup: int = 3) -> list[Comparison]:
    _configure()
    with project(MemoryStore(), SettableClock()):
        calls = scenario()
        return [
            compare(
                f"{ours} vs {theirs}",
                (ours, calls[ours]),
                (theirs, calls[theirs]),
                rounds=rounds,
                inner=inner,
                warmup=warmup,
            )
            for ours, theirs in PAIRS
        ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=30, help="measured rounds (default 30)")
    parser.add_argument("--inner", type=int, default=500, help="requests per round (default 500)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured rounds (default 3)")
    args = parser.parse_args(argv)
    results = run(args.rounds, args.inner, args.warmup)
    print(f"Python {sys.version.split()[0]}, Django {version('django')}")
    print(f"{args.rounds} rounds x {args.inner} requests, alternating; medians per request")
    print(f"{'comparison':<48} {'ours µs':>8} {'theirs µs':>9} {'overhead':>9} {'added µs':>9}")
    for result in results:
        ours, theirs = result.ours.median, result.theirs.median
        print(
            f"{result.label:<48} {ours * 1e6:8.1f} {theirs * 1e6:9.1f}"
            f" {ours / theirs - 1:+9.1%} {(ours - theirs) * 1e6:+9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
