"""Settings of a small Django project with stepup (only what it needs)."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"  # for a run on your machine; never in production
# Signs sessions and seals the TOTP secrets (see ENCRYPTION_KEYS): set your own, keep it.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 to try it locally)")
    SECRET_KEY = "django-insecure-for-a-local-run-only"  # noqa: S105 (DEBUG runs only)
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
# In production the session and CSRF cookies travel over https only (Secure).
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = not DEBUG

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "stepup.integrations.django",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "stepup.integrations.django.middleware.StepupMiddleware",  # after sessions and auth
]

ROOT_URLCONF = "acme.urls"
LOGIN_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("ACME_DATABASE", BASE_DIR / "db.sqlite3"),
        "OPTIONS": {"transaction_mode": "IMMEDIATE"},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

# Django's argon2id hasher first, so stepup can check the same hashes.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

STEPUP = {
    # The store is the Django ORM (migrations ship with the app); grants, throttles,
    # two-factor credentials and tenant flags live in this project's database.
    "TENANT_LOADER": "acme.views.current_tenant",
    "PASSWORD_HASH_LOADER": "stepup.integrations.django.hooks.django_password_hash",
    "PASSWORD_HASHER": "django",
    "IS_TENANT_ADMIN": "acme.views.is_tenant_admin",
    "HAS_FULL_ACCESS": "acme.views.has_full_access",
    "TOTP_ISSUER": "Acme",
}
