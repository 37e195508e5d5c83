from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home),
    path("login/", views.sign_in),
    path("logout/", views.sign_out),
    path("api-key/", views.api_key),
    path("api-key/regenerate/", views.regenerate_api_key),
    path("stepup/", include("stepup.integrations.django.urls")),
]
