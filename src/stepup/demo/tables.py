"""The demo app's own tables: its users, keys, workspaces, members and audit log.

They live in the same SQLite file as stepup's tables (prefix ``demo_``), as an app's
own tables would sit next to stepup's in its database.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Integer, MetaData, String, Table, Text

__all__ = [
    "api_keys",
    "audit",
    "contracts",
    "members",
    "metadata",
    "settings",
    "ssh_keys",
    "users",
    "workspaces",
]

metadata = MetaData()

#: Values the demo keeps across restarts (the signing key, the sealing key, "seeded").
settings = Table(
    "demo_settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "demo_users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # "admin" (tenant admin, full access) or "member"
    Column("tenant_id", String(64), nullable=False),
    Column("password_hash", String(512)),  # None for SSO users
    Column("login", String(16), nullable=False),  # "password", "oidc" or "saml"
    Column("issuer", String(512), nullable=False, default=""),
    Column("subject", String(512), nullable=False, default=""),
)

api_keys = Table(
    "demo_api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("demo_users.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(255), nullable=False),
    Column("secret", String(255), nullable=False),
    Column("created_at", Float, nullable=False),
)

ssh_keys = Table(
    "demo_ssh_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("demo_users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(255), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(128), nullable=False),
    Column("added_at", Float, nullable=False),
)

contracts = Table(
    "demo_contracts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(255), nullable=False),
)

workspaces = Table(
    "demo_workspaces",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("contract_id", ForeignKey("demo_contracts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("type", String(16), nullable=False),  # "full" (production) or "sandbox"
)

#: Members of a contract or of a workspace (``scope``), by email: invited people have
#: no demo account.
members = Table(
    "demo_members",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("scope", String(16), nullable=False),  # "contract" or "workspace"
    Column("scope_id", Integer, nullable=False),
    Column("email", String(255), nullable=False),
    Column("role", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # "active" or "invited"
)

#: stepup's events and the app's own, newest last. ``details`` is JSON without secrets.
audit = Table(
    "demo_audit",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("source", String(16), nullable=False),  # "stepup" or "app"
    Column("name", String(64), nullable=False),
    Column("user_id", String(64), nullable=False, default=""),
    Column("details", Text, nullable=False, default="{}"),
)
