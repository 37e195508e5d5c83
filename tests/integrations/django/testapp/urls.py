from __future__ import annotations

from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

from . import views

urlpatterns = [
    path("login/", views.sign_in),
    path("login/sso/", views.sign_in_sso),
    path("login/elsewhere/", views.sign_in_elsewhere),
    path("login/wrapped/", views.sign_in_wrapped),
    path("login/again/", views.sign_in_again),
    path("login/catching/", views.sign_in_catching),
    path("login/allauth-like/", views.sign_in_allauth_like),
    path("login/recorded/", views.sign_in_and_record),
    path("logout/", views.sign_out),
    path("home/", views.home),
    path("api-key/", views.read_api_key),
    path("api-key/regenerate/", views.regenerate_api_key),
    path("api-key/async/", views.read_api_key_async),
    path("api-key/copy/", views.CopyKeyAsync.as_view()),
    path("workspaces/<str:kind>/delete/", views.delete_workspace),
    path("billing/export/", views.ExportBilling.as_view()),
    path("profile/update/", views.require_inline),
    path("workspaces/<str:name>/destroy/", views.destroy_workspace),
    path("globex/workspaces/<str:name>/destroy/", views.destroy_workspace),
    path(
        "async/workspaces/<str:name>/destroy/", csrf_exempt(views.DestroyWorkspaceAsync.as_view())
    ),
    path("billing/pay/", views.pay),
    path("stepup/", include("stepup.integrations.django.urls")),
]
