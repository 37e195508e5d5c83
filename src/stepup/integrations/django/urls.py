"""The ready-made views, to include under a prefix of your choice::

    path("stepup/", include("stepup.integrations.django.urls")),

The namespace is ``stepup`` (``reverse("stepup:reauth")``); include it under another
namespace with ``STEPUP["URL_NAMESPACE"]`` set to match.
"""

from __future__ import annotations

from django.urls import path

from . import device_views, passkey_views, views

app_name = "stepup"

urlpatterns = [
    path("stepup.css", views.stylesheet, name="stylesheet"),
    path("reauth/", views.reauth, name="reauth"),
    path("reauth/password/", views.reauth_password, name="reauth_password"),
    path("reauth/status", views.reauth_status, name="reauth_status"),
    path("reauth/done", views.reauth_done, name="reauth_done"),
    path("reauth/resume", views.reauth_resume, name="reauth_resume"),
    path("stepup-reauth.js", views.script, name="script"),
    path("stepup-codes.js", views.codes_script, name="codes_script"),
    path("reauth/oidc/start/", views.oidc_start, name="oidc_start"),
    path("reauth/oidc/callback/", views.oidc_callback, name="oidc_callback"),
    path("reauth/saml/start/", views.saml_start, name="saml_start"),
    path("reauth/saml/acs/", views.saml_acs, name="saml_acs"),
    path("reauth/saml/metadata/", views.saml_metadata, name="saml_metadata"),
    path("2fa/", views.two_factor, name="two_factor"),
    path("2fa/enrol/", views.two_factor_enrol, name="two_factor_enrol"),
    path("2fa/confirm/", views.two_factor_confirm, name="two_factor_confirm"),
    path("2fa/verify/", views.two_factor_verify, name="two_factor_verify"),
    path("2fa/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("2fa/remove/", views.two_factor_remove, name="two_factor_remove"),
    path("2fa/devices/add/", device_views.device_add, name="device_add"),
    path("2fa/devices/confirm/", device_views.device_confirm, name="device_confirm"),
    path("2fa/devices/<str:device_id>/rename/", device_views.device_rename, name="device_rename"),
    path("2fa/devices/<str:device_id>/remove/", device_views.device_remove, name="device_remove"),
    path(
        "users/<str:user_id>/2fa/remove/",
        views.admin_two_factor_remove,
        name="admin_two_factor_remove",
    ),
    path("tenants/<str:tenant_id>", views.tenant, name="tenant"),
    path("passkeys/", passkey_views.passkeys, name="passkeys"),
    path("passkeys/register/begin", passkey_views.register_begin, name="passkey_register_begin"),
    path(
        "passkeys/register/finish",
        passkey_views.register_finish,
        name="passkey_register_finish",
    ),
    path(
        "passkeys/<str:credential_id>/rename",
        passkey_views.passkey_rename,
        name="passkey_rename",
    ),
    path(
        "passkeys/<str:credential_id>/remove",
        passkey_views.passkey_remove,
        name="passkey_remove",
    ),
    path("reauth/passkey/begin", passkey_views.reauth_begin, name="reauth_passkey_begin"),
    path("reauth/passkey/finish", passkey_views.reauth_finish, name="reauth_passkey_finish"),
    path("2fa/verify/passkey/begin", passkey_views.sign_in_begin, name="sign_in_passkey_begin"),
    path("2fa/verify/passkey/finish", passkey_views.sign_in_finish, name="sign_in_passkey_finish"),
    path("stepup-passkeys.js", passkey_views.passkey_script, name="passkey_script"),
]
