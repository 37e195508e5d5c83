"""The stepup demo: a small Starlette app on the embedded SQLite store.

``stepup demo`` runs it. Tenant "Acme" has an admin and a member who sign in with
passwords; their API keys, SSH keys, workspaces, contract members and two-factor
settings are behind stepup's re-authentication once an admin turns the tenant's
``sensitive_actions_reauth`` flag on. The demo decides nothing itself: it calls the
Starlette integration and the core. See ``docs/demo.md``.
"""

from .app import create_app
from .seed import DEMO_USERS, TENANT
from .settings import DemoSettings, OIDCSettings, default_demo_path

__all__ = [
    "DEMO_USERS",
    "TENANT",
    "DemoSettings",
    "OIDCSettings",
    "create_app",
    "default_demo_path",
]
