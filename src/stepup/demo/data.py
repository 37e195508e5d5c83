"""The demo app's own data, read and written on the event loop through SQLAlchemy's
asyncio engine (the same engine, and SQLite file, as the stepup store)."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ..adapters.storage.sql_engine import IMMEDIATE
from ..subject import Identity, LoginMethod
from . import tables as t

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Contract",
    "DemoData",
    "Member",
    "SshKey",
    "User",
    "Workspace",
]


@dataclass(frozen=True, slots=True)
class User:
    id: str
    email: str
    name: str
    role: str
    tenant_id: str
    login: str = "password"
    issuer: str = ""
    subject: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def identity(self) -> Identity:
        """How this user signs in, as stepup's subject carries it."""
        return Identity(LoginMethod(self.login), issuer=self.issuer, subject=self.subject)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    label: str
    secret: str
    created_at: float

    @property
    def masked(self) -> str:
        """Enough to tell keys apart; reading the whole key is a sensitive action."""
        return f"{self.secret[:8]}{'•' * 12}{self.secret[-4:]}"


@dataclass(frozen=True, slots=True)
class SshKey:
    id: int
    title: str
    fingerprint: str
    added_at: float


@dataclass(frozen=True, slots=True)
class Contract:
    id: int
    name: str


@dataclass(frozen=True, slots=True)
class Workspace:
    id: int
    name: str
    type: str

    @property
    def production(self) -> bool:
        return self.type == "full"


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    scope: str
    scope_id: int
    email: str
    role: str
    status: str


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    source: str
    name: str
    user_id: str
    details: Mapping[str, Any]


def _user(row: Any) -> User:
    return User(
        row.id, row.email, row.name, row.role, row.tenant_id, row.login, row.issuer, row.subject
    )


class DemoData:
    """Small queries, each one transaction. Writes begin ``IMMEDIATE`` like the store's."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = engine.execution_options(**{IMMEDIATE: True})

    async def _rows(self, statement: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list(await conn.execute(statement))

    async def _write(self, statement: Any) -> int:
        async with self._writer.begin() as conn:
            result = await conn.execute(statement)
            return int(result.rowcount or 0)

    # users ------------------------------------------------------------------

    async def user(self, user_id: str) -> User | None:
        rows = await self._rows(select(t.users).where(t.users.c.id == user_id))
        return _user(rows[0]) if rows else None

    async def user_by_email(self, email: str) -> User | None:
        query = select(t.users).where(func.lower(t.users.c.email) == email.strip().lower())
        rows = await self._rows(query)
        return _user(rows[0]) if rows else None

    async def user_by_identity(self, login: str, issuer: str, subject: str) -> User | None:
        c = t.users.c
        query = select(t.users).where(c.login == login, c.issuer == issuer, c.subject == subject)
        rows = await self._rows(query)
        return _user(rows[0]) if rows else None

    async def users(self, tenant_id: str) -> list[User]:
        query = select(t.users).where(t.users.c.tenant_id == tenant_id).order_by(t.users.c.email)
        return [_user(row) for row in await self._rows(query)]

    async def add_user(self, user: User) -> None:
        await self._write(
            insert(t.users).values(
                id=user.id,
                email=user.email,
                name=user.name,
                role=user.role,
                tenant_id=user.tenant_id,
                password_hash=None,
                login=user.login,
                issuer=user.issuer,
                subject=user.subject,
            )
        )

    async def update_user(self, user_id: str, *, name: str, email: str) -> None:
        statement = update(t.users).where(t.users.c.id == user_id).values(name=name, email=email)
        await self._write(statement)

    async def password_hash(self, user_id: str) -> str | None:
        rows = await self._rows(select(t.users.c.password_hash).where(t.users.c.id == user_id))
        return rows[0].password_hash if rows else None

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        statement = update(t.users).where(t.users.c.id == user_id)
        await self._write(statement.values(password_hash=password_hash))

    # API keys ---------------------------------------------------------------

    async def api_keys(self, user_id: str) -> list[ApiKey]:
        c = t.api_keys.c
        query = select(c.id, c.label, c.secret, c.created_at).where(c.user_id == user_id)
        return [ApiKey(*row) for row in await self._rows(query.order_by(c.id))]

    async def api_key(self, user_id: str, key_id: int) -> ApiKey | None:
        c = t.api_keys.c
        query = select(c.id, c.label, c.secret, c.created_at).where(
            c.user_id == user_id, c.id == key_id
        )
        rows = await self._rows(query)
        return ApiKey(*rows[0]) if rows else None

    async def replace_api_key(self, user_id: str, key_id: int, secret: str, now: float) -> bool:
        c = t.api_keys.c
        statement = update(t.api_keys).where(c.user_id == user_id, c.id == key_id)
        return await self._write(statement.values(secret=secret, created_at=now)) == 1

    async def add_api_key(self, user_id: str, label: str, secret: str, now: float) -> None:
        values = {"user_id": user_id, "label": label, "secret": secret, "created_at": now}
        await self._write(insert(t.api_keys).values(**values))

    # SSH keys ---------------------------------------------------------------

    async def ssh_keys(self, user_id: str) -> list[SshKey]:
        c = t.ssh_keys.c
        query = select(c.id, c.title, c.fingerprint, c.added_at).where(c.user_id == user_id)
        return [SshKey(*row) for row in await self._rows(query.order_by(c.id))]

    async def ssh_key(self, user_id: str, key_id: int) -> SshKey | None:
        keys = [key for key in await self.ssh_keys(user_id) if key.id == key_id]
        return keys[0] if keys else None

    async def add_ssh_key(
        self, user_id: str, title: str, public_key: str, fingerprint: str, now: float
    ) -> None:
        values = {
            "user_id": user_id,
            "title": title,
            "public_key": public_key,
            "fingerprint": fingerprint,
            "added_at": now,
        }
        await self._write(insert(t.ssh_keys).values(**values))

    async def remove_ssh_key(self, user_id: str, key_id: int) -> bool:
        c = t.ssh_keys.c
        return (
            await self._write(delete(t.ssh_keys).where(c.user_id == user_id, c.id == key_id)) == 1
        )

    # contracts, workspaces, members ------------------------------------------

    async def contract(self, tenant_id: str) -> Contract | None:
        c = t.contracts.c
        rows = await self._rows(select(c.id, c.name).where(c.tenant_id == tenant_id))
        return Contract(*rows[0]) if rows else None

    async def workspaces(self, contract_id: int) -> list[Workspace]:
        c = t.workspaces.c
        query = select(c.id, c.name, c.type).where(c.contract_id == contract_id).order_by(c.id)
        return [Workspace(*row) for row in await self._rows(query)]

    async def workspace(self, contract_id: int, workspace_id: int) -> Workspace | None:
        c = t.workspaces.c
        query = select(c.id, c.name, c.type).where(
            c.contract_id == contract_id, c.id == workspace_id
        )
        rows = await self._rows(query)
        return Workspace(*rows[0]) if rows else None

    async def add_workspace(self, contract_id: int, name: str, kind: str) -> None:
        values = {"contract_id": contract_id, "name": name, "type": kind}
        await self._write(insert(t.workspaces).values(**values))

    async def delete_workspace(self, contract_id: int, workspace_id: int) -> bool:
        async with self._writer.begin() as conn:
            c = t.workspaces.c
            gone = await conn.execute(
                delete(t.workspaces).where(c.contract_id == contract_id, c.id == workspace_id)
            )
            if gone.rowcount != 1:
                return False
            m = t.members.c
            await conn.execute(
                delete(t.members).where(m.scope == "workspace", m.scope_id == workspace_id)
            )
            return True

    async def members(self, scope: str, scope_id: int) -> list[Member]:
        m = t.members.c
        query = select(t.members).where(m.scope == scope, m.scope_id == scope_id)
        return [_member(row) for row in await self._rows(query.order_by(m.id))]

    async def member(self, scope: str, scope_id: int, member_id: int) -> Member | None:
        m = t.members.c
        query = select(t.members).where(m.scope == scope, m.scope_id == scope_id, m.id == member_id)
        rows = await self._rows(query)
        return _member(rows[0]) if rows else None

    async def add_member(self, scope: str, scope_id: int, email: str, role: str) -> None:
        values = {
            "scope": scope,
            "scope_id": scope_id,
            "email": email,
            "role": role,
            "status": "invited",
        }
        await self._write(insert(t.members).values(**values))

    async def remove_member(self, member_id: int) -> bool:
        return await self._write(delete(t.members).where(t.members.c.id == member_id)) == 1

    async def set_member_role(self, member_id: int, role: str) -> bool:
        statement = update(t.members).where(t.members.c.id == member_id).values(role=role)
        return await self._write(statement) == 1

    # audit ------------------------------------------------------------------

    async def add_audit(self, entries: Iterable[AuditEntry]) -> None:
        rows = [
            {
                "at": e.at,
                "source": e.source,
                "name": e.name,
                "user_id": e.user_id,
                "details": json.dumps(e.details, sort_keys=True, default=str),
            }
            for e in entries
        ]
        if rows:
            async with self._writer.begin() as conn:
                await conn.execute(insert(t.audit), rows)

    async def audit(
        self,
        *,
        user_id: str | None = None,
        tenant_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Newest first: one user's entries, or those of every user of ``tenant_id``
        (an entry belongs to the user it names). Give one of the two."""
        c = t.audit.c
        query = select(t.audit)
        if user_id is not None:
            query = query.where(c.user_id == user_id)
        elif tenant_id is not None:
            members = select(t.users.c.id).where(t.users.c.tenant_id == tenant_id)
            query = query.where(c.user_id.in_(members.scalar_subquery()))
        else:
            raise ValueError("audit(): give user_id or tenant_id")
        query = query.order_by(c.id.desc()).limit(limit).offset(offset)
        return [_audit_entry(row) for row in await self._rows(query)]

    async def latest_audit(self, user_id: str, names: Collection[str]) -> AuditEntry | None:
        """The user's newest entry among the events ``names`` (``None``: none of them)."""
        c = t.audit.c
        query = (
            select(t.audit)
            .where(c.user_id == user_id, c.name.in_(list(names)))
            .order_by(c.id.desc())
            .limit(1)
        )
        rows = await self._rows(query)
        return _audit_entry(rows[0]) if rows else None


def _audit_entry(row: Any) -> AuditEntry:
    return AuditEntry(row.at, row.source, row.name, row.user_id, json.loads(row.details))


def _member(row: Any) -> Member:
    return Member(row.id, row.scope, row.scope_id, row.email, row.role, row.status)
