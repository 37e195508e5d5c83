"""Django integration: an app for ``INSTALLED_APPS``, middleware, a decorator and a mixin,
ready-made views, an ORM-backed store with migrations, system checks and signals.

::

    INSTALLED_APPS = [..., "stepup.integrations.django"]
    MIDDLEWARE = [..., "stepup.integrations.django.middleware.StepupMiddleware"]
    STEPUP = {"PASSWORD_HASH_LOADER": "myapp.auth.password_hash", ...}

    @reauth_required("api_key.regenerate")
    def regenerate_api_key(request): ...

See ``docs/getting-started-django.md``. Names are imported on first use, so listing the
app in ``INSTALLED_APPS`` loads nothing before Django's app registry is ready; only that
the django extra's packages are installed is checked then, without importing them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ..._extras import needs_extra, require_installed

with needs_extra(__name__, "django"):  # Babel is optional: i18n falls back to ISO 8601
    require_installed("django", "jinja2", "fido2")

if TYPE_CHECKING:
    from ..http import SignInRequiredError
    from ._request import RequestStepup
    from .decorators import reauth_required
    from .middleware import StepupMiddleware
    from .mixins import ReauthRequiredMixin
    from .services import Stepup, get_stepup
    from .store import DjangoStore

__all__ = [
    "DjangoStore",
    "ReauthRequiredMixin",
    "RequestStepup",
    "SignInRequiredError",
    "Stepup",
    "StepupMiddleware",
    "get_stepup",
    "reauth_required",
]

_WHERE = {
    "DjangoStore": ".store",
    "ReauthRequiredMixin": ".mixins",
    "RequestStepup": "._request",
    "SignInRequiredError": "..http",
    "Stepup": ".services",
    "StepupMiddleware": ".middleware",
    "get_stepup": ".services",
    "reauth_required": ".decorators",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
