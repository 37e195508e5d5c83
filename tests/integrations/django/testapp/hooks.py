"""The test app's hooks: who is signed in (session, bearer token or API key), its
tenant, and who administers what. Users are Django users: alice (tenant admin, full
access) and bob."""

from __future__ import annotations

from dataclasses import replace

from django.contrib.auth import get_user_model
from django.http import HttpRequest

from stepup import Channel
from stepup.assurance import Level, Levels
from stepup.integrations.django.hooks import django_auth_subject
from stepup.integrations.views import default_policy
from stepup.policy import SENSITIVE, Policy, Rule, Sensitivity
from stepup.subject import Subject

TENANT = "acme"
#: New hashes the password re-auth asked to save, by user id.
REHASHED: dict[str, str] = {}


#: Two levels, as the test OpenID provider's acr values and SAML class references.
LEVELS = Levels(
    (
        Level(
            "password",
            acr=("urn:stepup:pwd",),
            saml=("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",),
            methods=(("pwd",),),
        ),
        Level(
            "mfa",
            acr=("urn:stepup:mfa",),
            saml=("https://refeds.org/profile/mfa",),
            methods=(("pwd", "otp"),),
        ),
    )
)


def app_policy() -> Policy:
    """The default catalog plus one action that also demands a second factor, one bound
    to one transaction and one that asks an SSO user's provider for a level."""
    rule = replace(SENSITIVE, second_factor=True, description="Exporting billing")
    destroy = Rule(
        Sensitivity.CRITICAL,
        lifetime=300.0,
        bind_transaction=True,
        description="Deleting a workspace",
    )
    pay = Rule(
        Sensitivity.SENSITIVE,
        methods=frozenset({"oidc", "saml"}),
        level="mfa",
        description="Paying",
    )
    return (
        default_policy()
        .with_levels(LEVELS)
        .extend({"billing.export": rule, "workspace.destroy": destroy, "billing.pay": pay})
    )


def username(user_id: str) -> str | None:
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    return None if user is None else str(user.get_username())


def user_id(name: str) -> str:
    return str(get_user_model()._default_manager.get(username=name).pk)


def load_subject(request: HttpRequest) -> Subject | None:
    """API clients by header; everyone else through Django's session and user."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer token-"):
        name = auth.removeprefix("Bearer token-")
        return Subject(user_id(name), "api-token", channel=Channel.API)
    api_key = request.headers.get("X-API-Key")
    if api_key:
        return Subject(user_id(api_key), "api-key", channel=Channel.API_KEY)
    return django_auth_subject(request)


def tenant(request: HttpRequest) -> str:
    # /globex/... runs in another tenant (the transaction tests' second tenant)
    return "globex" if request.path.startswith("/globex/") else TENANT


def is_tenant_admin(subject: Subject, tenant_id: str) -> bool:
    # alice administers acme and "ghost", a tenant that does not exist
    return tenant_id in {TENANT, "ghost"} and username(subject.user_id) == "alice"


def has_full_access(subject: Subject) -> bool:
    return username(subject.user_id) == "alice"


def save_rehash(user_id: str, new_hash: str) -> None:
    REHASHED[user_id] = new_hash
