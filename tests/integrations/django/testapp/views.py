"""The test app's own views: a login that hands over to the second factor, and
protected views of every kind (sync and async functions, sync and async classes)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.hashers import check_password
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from stepup.integrations.django.decorators import reauth_required
from stepup.integrations.django.mixins import ReauthRequiredMixin
from stepup.integrations.transaction import Transaction
from stepup.subject import Identity, LoginMethod


@csrf_exempt
@require_POST
def sign_in(request: HttpRequest) -> HttpResponse:
    """Check the password (without Django's rehash-on-login), then either finish the
    sign-in or hand over to the second factor."""
    user = get_user_model()._default_manager.filter(username=request.POST.get("username")).first()
    if user is None or not check_password(request.POST.get("password", ""), user.password):
        return HttpResponse("wrong", status=401)
    next_page = request.POST.get("next", "/home/")
    waiting = request.stepup.begin_sign_in(str(user.pk), next=next_page)
    if waiting is not None:
        return waiting
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponseRedirect(next_page, status=303)


@csrf_exempt
@require_POST
def sign_in_elsewhere(request: HttpRequest) -> HttpResponse:
    """Another way in that knows nothing of stepup (Django admin's login, another app's,
    a password reset that signs the user in): the password, then ``login()``."""
    user = get_user_model()._default_manager.filter(username=request.POST.get("username")).first()
    if user is None or not check_password(request.POST.get("password", ""), user.password):
        return HttpResponse("wrong", status=401)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponseRedirect(request.POST.get("to", "/api-key/"), status=302)


class _Wrapped:
    """Stands for Django REST framework's ``Request``: it wraps the ``HttpRequest``
    (``_request``) and reads through to it, but attributes set on it stay on it."""

    def __init__(self, request: HttpRequest) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


@csrf_exempt
@require_POST
def sign_in_wrapped(request: HttpRequest) -> HttpResponse:
    """An API login view (dj-rest-auth's, on DRF): ``login()`` on the wrapper, a token
    in the answer and in a cookie."""
    user = get_user_model()._default_manager.filter(username=request.POST.get("username")).first()
    if user is None or not check_password(request.POST.get("password", ""), user.password):
        return HttpResponse("wrong", status=401)
    login(_Wrapped(request), user, backend="django.contrib.auth.backends.ModelBackend")  # type: ignore[arg-type]
    answer = HttpResponse('{"key": "api-token"}', content_type="application/json")
    answer.set_cookie("app_token", "api-token")
    return answer


@csrf_exempt
@require_POST
def sign_in_allauth_like(request: HttpRequest) -> HttpResponse:
    """What django-allauth does after ``login()``: it asserts the user is signed in, makes
    the session end with the browser ("Remember me" unchecked), then redirects."""
    user = get_user_model()._default_manager.filter(username=request.POST.get("username")).first()
    if user is None or not check_password(request.POST.get("password", ""), user.password):
        return HttpResponse("wrong", status=401)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    assert request.user.is_authenticated  # allauth's get_login_redirect_url
    request.session.set_expiry(0)
    return HttpResponseRedirect("/home/", status=302)


@csrf_exempt
@require_POST
def sign_in_catching(request: HttpRequest) -> HttpResponse:
    """A login view that swallows whatever ``login()`` raises."""
    user = get_user_model()._default_manager.get(username=request.POST["username"])
    try:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    except Exception:
        return HttpResponseRedirect("/home/?failed", status=302)
    return HttpResponseRedirect("/home/", status=302)


#: What :func:`sign_in_and_record`'s ``record_sign_in`` answered, in order.
RECORDED: list[Any] = []


@csrf_exempt
@require_POST
def sign_in_and_record(request: HttpRequest) -> HttpResponse:
    """The guide's own sign-in: ``login()`` (none without a user name), then
    ``record_sign_in``; its answer goes to :data:`RECORDED`."""
    name = request.POST.get("username")
    user = get_user_model()._default_manager.filter(username=name).first() if name else None
    if user is not None:
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    RECORDED.append(request.stepup.record_sign_in(("pwd",)))
    return HttpResponseRedirect("/api-key/", status=302)


def sign_in_again(request: HttpRequest) -> HttpResponse:
    """A view that signs the signed-in user in again (to renew the session)."""
    login(request, request.user, backend="django.contrib.auth.backends.ModelBackend")
    return HttpResponse("renewed")


@csrf_exempt
@require_POST
def sign_in_sso(request: HttpRequest) -> HttpResponse:
    """Stands in for the project's SSO sign-in: who signed in, through which provider."""
    user = get_user_model()._default_manager.get(username=request.POST["username"])
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.stepup.note_sign_in(
        Identity(
            LoginMethod(request.POST["method"]),
            issuer=request.POST["issuer"],
            subject=request.POST["subject"],
            provider=request.POST["provider"],
        )
    )
    return HttpResponseRedirect("/home/", status=303)


@csrf_exempt
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponseRedirect("/home/", status=303)


def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    return HttpResponse(f"home of {user.get_username() if user.is_authenticated else 'nobody'}")


def _reason(request: HttpRequest) -> Any:
    decision = request.stepup.decision
    return decision.reason if decision is not None else None


@reauth_required("api_key.read")
def read_api_key(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"api_key": "key-123", "reason": _reason(request)})


@csrf_exempt
@require_POST
@reauth_required("api_key.regenerate", return_to="/api-key/")
def regenerate_api_key(request: HttpRequest) -> HttpResponse:
    return HttpResponse("regenerated")


@csrf_exempt
@require_POST
@reauth_required(
    "workspace.delete", context=lambda r: {"workspace_type": r.resolver_match.kwargs["kind"]}
)
def delete_workspace(request: HttpRequest, kind: str) -> HttpResponse:
    return HttpResponse(f"deleted {kind}")


@reauth_required("api_key.read")
async def read_api_key_async(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"api_key": "key-async", "reason": _reason(request)})


class ExportBilling(ReauthRequiredMixin, View):
    reauth_action = "billing.export"

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("billing.csv")


class CopyKeyAsync(ReauthRequiredMixin, View):
    reauth_action = "api_key.copy"

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("copied")


def require_inline(request: HttpRequest) -> HttpResponse:
    """A view that asks inside its body; the middleware answers the error."""
    request.stepup.require("user.update")
    return HttpResponse("updated")


def _workspace(request: HttpRequest) -> Transaction:
    name = request.resolver_match.kwargs["name"]  # type: ignore[union-attr]
    return Transaction({"workspace": name}, "Delete workspace %(workspace)s")


@csrf_exempt
@require_POST
@reauth_required("workspace.destroy", transaction=_workspace, return_to="/home/")
def destroy_workspace(request: HttpRequest, name: str) -> HttpResponse:
    return HttpResponse(f"destroyed {name}")


class DestroyWorkspaceAsync(ReauthRequiredMixin, View):
    """The same action from an async class-based view (the mixin's transaction)."""

    reauth_action = "workspace.destroy"
    reauth_return_to = "/home/"

    def get_reauth_transaction(self, request: HttpRequest) -> Transaction:
        return Transaction({"workspace": self.kwargs["name"]}, "Delete workspace %(workspace)s")

    async def post(self, request: HttpRequest, name: str) -> HttpResponse:
        return HttpResponse(f"destroyed {name}")


@reauth_required("billing.pay")
def pay(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"paid": True})
