"""The project's own views and the hooks that tell stepup about its users."""

from django.contrib.auth import authenticate, get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_POST

from stepup.integrations.django import reauth_required
from stepup.redirects import safe_return_path_or_default
from stepup.subject import Subject

# Hooks (named in settings.STEPUP) ------------------------------------------------------


TENANT = "acme"  # a multi-tenant project reads it from the user, the host or the URL


def current_tenant(request: HttpRequest) -> str:
    return TENANT


def is_tenant_admin(subject: Subject, tenant_id: str) -> bool:
    # Staff administer their own tenant and no other: compare the tenant asked about.
    if tenant_id != TENANT:
        return False
    return get_user_model().objects.filter(pk=subject.user_id, is_staff=True).exists()


def has_full_access(subject: Subject) -> bool:
    return get_user_model().objects.filter(pk=subject.user_id, is_superuser=True).exists()


# Views -----------------------------------------------------------------------------------

LOGIN_FORM = """<p>{}</p>
<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="{}">
<input type="hidden" name="next" value="{}"><input name="username" placeholder="username">
<input type="password" name="password"><button>Sign in</button></form>"""

HOME_PAGE = """<p>Hello {}</p>
<p><a href="/api-key/">Show my API key</a> ·
<a href="/stepup/2fa/">Two-factor authentication</a></p>
<form method="post" action="/logout/">
<input type="hidden" name="csrfmiddlewaretoken" value="{}"><button>Sign out</button></form>"""

KEY_PAGE = """Your API key: <code>ak_live_1234</code>
<form method="post" action="/api-key/regenerate/">
<input type="hidden" name="csrfmiddlewaretoken" value="{}"><button>Regenerate</button></form>"""


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    next_path = safe_return_path_or_default(request.POST.get("next", request.GET.get("next")))
    error = ""
    if request.method == "POST":
        # Django checks an unknown user name's password against a hash too: the same time,
        # and the same answer, as a wrong password.
        user = authenticate(
            request, username=request.POST.get("username"), password=request.POST.get("password")
        )
        if user is not None:
            # Enrolled in 2FA? Then the sign-in waits for the code at /stepup/2fa/verify/.
            second_step = request.stepup.begin_sign_in(str(user.pk), next=next_path)
            if second_step is not None:
                return second_step
            login(request, user)
            return HttpResponseRedirect(next_path, status=303)
        error = "Wrong user name or password."
    page = format_html(LOGIN_FORM, error, get_token(request), next_path)
    return HttpResponse(page, status=401 if error else 200)


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)  # stepup revokes this session's re-authentication
    return HttpResponseRedirect("/login/", status=303)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(
        format_html(HOME_PAGE, request.user.get_username(), get_token(request))
    )


@login_required
@reauth_required("api_key.read")
def api_key(request: HttpRequest) -> HttpResponse:
    return HttpResponse(format_html(KEY_PAGE, get_token(request)))


@require_POST
@login_required
@reauth_required("api_key.regenerate", return_to="/api-key/")
def regenerate_api_key(request: HttpRequest) -> HttpResponse:
    return HttpResponseRedirect("/api-key/", status=303)
