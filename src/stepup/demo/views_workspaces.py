"""Workspaces (deleting a production one is sensitive), and the members of the contract
and of each workspace (invite, remove, change role: all sensitive)."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..policy import Context
from .data import Contract, User
from .web import Demo

__all__ = ["MemberViews", "WorkspaceViews"]

ROLES: Final = {
    "contract": ("owner", "admin", "member"),
    "workspace": ("admin", "editor", "viewer"),
}
WORKSPACE_TYPES: Final = {"full": "Production (full)", "sandbox": "Sandbox"}
_MAX_NAME = 100


class WorkspaceViews:
    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def routes(self) -> list[BaseRoute]:
        guard = self.demo.stepup.requires_reauth
        delete = guard("workspace.delete", context=self.delete_context)
        return [
            Route("/workspaces", self.workspaces, methods=["GET", "POST"]),
            Route("/workspaces/{workspace_id:int}", self.workspace),
            Route(
                "/workspaces/{workspace_id:int}/delete",
                delete(self.delete),
                methods=["GET", "POST"],
            ),
        ]

    async def _contract(self, request: Request) -> tuple[User, Contract] | Response:
        user = await self.demo.signed_in(request)
        if isinstance(user, Response):
            return user
        contract = await self.demo.data.contract(user.tenant_id)
        return (user, contract) if contract is not None else self.demo.not_found(request)

    async def delete_context(self, request: Request) -> Context:
        """The rule's context: is this workspace a full (production) one?"""
        found = await self._contract(request)
        if isinstance(found, Response):
            return {}
        workspace = await self.demo.data.workspace(found[1].id, request.path_params["workspace_id"])
        return {"workspace_type": workspace.type} if workspace is not None else {}

    async def workspaces(self, request: Request) -> Response:
        demo = self.demo
        found = await self._contract(request)
        if isinstance(found, Response):
            return found
        user, contract = found
        if request.method == "POST":  # creating a workspace is not sensitive
            form = await demo.form(request)
            if form is None:
                return demo.csrf_failed(request)
            name = " ".join(str(form.get("name", "")).split())[:_MAX_NAME]
            kind = str(form.get("type", ""))
            if name and kind in WORKSPACE_TYPES:
                await demo.data.add_workspace(contract.id, name, kind)
                demo.audit.app_event("WorkspaceCreated", user.id, workspace=name, type=kind)
                return demo.redirect(request, "/workspaces", f"Created the workspace {name}.")
            demo.flash(request, "Give the workspace a name and a type.")
        workspaces = await demo.data.workspaces(contract.id)
        return demo.render(
            request,
            "workspaces.html",
            contract=contract,
            workspaces=workspaces,
            types=WORKSPACE_TYPES,
        )

    async def workspace(self, request: Request) -> Response:
        demo = self.demo
        found = await self._contract(request)
        if isinstance(found, Response):
            return found
        workspace = await demo.data.workspace(found[1].id, request.path_params["workspace_id"])
        if workspace is None:
            return demo.not_found(request)
        members = await demo.data.members("workspace", workspace.id)
        base = f"/workspaces/{workspace.id}"
        return demo.render(
            request,
            "workspace.html",
            workspace=workspace,
            types=WORKSPACE_TYPES,
            members=members,
            base=base,
        )

    async def delete(self, request: Request) -> Response:
        demo = self.demo
        found = await self._contract(request)
        if isinstance(found, Response):
            return found
        user, contract = found
        workspace = await demo.data.workspace(contract.id, request.path_params["workspace_id"])
        if workspace is None:
            return demo.not_found(request)
        if request.method == "GET":
            kind = WORKSPACE_TYPES[workspace.type].lower()
            return demo.render(
                request,
                "confirm.html",
                title=f"Delete the workspace {workspace.name}?",
                text=f"This {kind} workspace and its members list are deleted for good.",
                button="Delete workspace",
                cancel="/workspaces",
            )
        if await demo.form(request) is None:
            return demo.csrf_failed(request)
        await demo.data.delete_workspace(contract.id, workspace.id)
        demo.audit.app_event(
            "WorkspaceDeleted", user.id, workspace=workspace.name, type=workspace.type
        )
        return demo.redirect(request, "/workspaces", f"Deleted the workspace {workspace.name}.")


class MemberViews:
    """Invite, remove and re-role the members of the contract (``scope="contract"``) or
    of a workspace (``scope="workspace"``); the action names follow the scope."""

    def __init__(self, demo: Demo, scope: str) -> None:
        self.demo = demo
        self.scope = scope

    def routes(self) -> list[BaseRoute]:
        guard = self.demo.stepup.requires_reauth
        both = ["GET", "POST"]
        prefix = "/contract" if self.scope == "contract" else "/workspaces/{workspace_id:int}"
        routes: list[BaseRoute] = [
            Route(
                f"{prefix}/members/invite",
                guard(f"{self.scope}.member.invite")(self.invite),
                methods=both,
            ),
            Route(
                prefix + "/members/{member_id:int}/remove",
                guard(f"{self.scope}.member.remove")(self.remove),
                methods=both,
            ),
            Route(
                prefix + "/members/{member_id:int}/role",
                guard(f"{self.scope}.member.role.change")(self.role),
                methods=both,
            ),
        ]
        if self.scope == "contract":
            routes.append(Route("/contract", self.contract))
        return routes

    async def _where(self, request: Request) -> tuple[User, int, str, str] | Response:
        """The user, the scope's id, its name and its page."""
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        contract = await demo.data.contract(user.tenant_id)
        if contract is None:
            return demo.not_found(request)
        if self.scope == "contract":
            return user, contract.id, contract.name, "/contract"
        workspace = await demo.data.workspace(contract.id, request.path_params["workspace_id"])
        if workspace is None:
            return demo.not_found(request)
        return user, workspace.id, workspace.name, f"/workspaces/{workspace.id}"

    async def contract(self, request: Request) -> Response:
        found = await self._where(request)
        if isinstance(found, Response):
            return found
        _, scope_id, name, page = found
        members = await self.demo.data.members("contract", scope_id)
        return self.demo.render(request, "contract.html", name=name, members=members, base=page)

    async def invite(self, request: Request) -> Response:
        demo = self.demo
        found = await self._where(request)
        if isinstance(found, Response):
            return found
        user, scope_id, name, page = found
        roles = ROLES[self.scope]
        if request.method == "GET":
            return self.member_form(request, name, page, None, "")
        form = await demo.form(request)
        if form is None:
            return demo.csrf_failed(request)
        email = str(form.get("email", "")).strip()[:255]
        role = str(form.get("role", ""))
        if "@" not in email or role not in roles:
            return self.member_form(request, name, page, None, "Enter an email and a role.", 400)
        await demo.data.add_member(self.scope, scope_id, email, role)
        demo.audit.app_event(
            "MemberInvited", user.id, scope=self.scope, to=name, email=email, role=role
        )
        return demo.redirect(request, page, f"Invited {email} as {role}.")

    async def remove(self, request: Request) -> Response:
        demo = self.demo
        found = await self._where(request)
        if isinstance(found, Response):
            return found
        user, scope_id, name, page = found
        member = await demo.data.member(self.scope, scope_id, request.path_params["member_id"])
        if member is None:
            return demo.not_found(request)
        if request.method == "GET":
            return demo.render(
                request,
                "confirm.html",
                title=f"Remove {member.email} from {name}?",
                text="They lose access at once.",
                button="Remove member",
                cancel=page,
            )
        if await demo.form(request) is None:
            return demo.csrf_failed(request)
        await demo.data.remove_member(member.id)
        demo.audit.app_event(
            "MemberRemoved", user.id, scope=self.scope, to=name, email=member.email
        )
        return demo.redirect(request, page, f"Removed {member.email}.")

    async def role(self, request: Request) -> Response:
        demo = self.demo
        found = await self._where(request)
        if isinstance(found, Response):
            return found
        user, scope_id, name, page = found
        member = await demo.data.member(self.scope, scope_id, request.path_params["member_id"])
        if member is None:
            return demo.not_found(request)
        if request.method == "GET":
            return self.member_form(request, name, page, member.email, "", role=member.role)
        form = await demo.form(request)
        if form is None:
            return demo.csrf_failed(request)
        role = str(form.get("role", ""))
        if role not in ROLES[self.scope]:
            return self.member_form(request, name, page, member.email, "Pick a role.", 400)
        await demo.data.set_member_role(member.id, role)
        demo.audit.app_event(
            "MemberRoleChanged",
            user.id,
            scope=self.scope,
            to=name,
            email=member.email,
            old=member.role,
            new=role,
        )
        return demo.redirect(request, page, f"{member.email} is now {role}.")

    def member_form(
        self,
        request: Request,
        name: str,
        page: str,
        email: str | None,
        error: str,
        status: int = 200,
        role: str = "",
    ) -> Response:
        return self.demo.render(
            request,
            "member_form.html",
            status=status,
            scope=self.scope,
            name=name,
            cancel=page,
            email=email,
            roles=ROLES[self.scope],
            role=role,
            error=error,
        )
