"""Workspaces (deleting a production one is sensitive), and the members of the contract
and of each workspace (invite, remove, change role: all sensitive).

Who may: any user of the tenant sees the workspaces and the members, and creates
workspaces; only a tenant admin invites, removes and re-roles members and deletes
workspaces (anyone else gets a 403 page saying so, and the pages show them no such
controls). Re-authentication is not authorisation: it confirms who is acting, never
what they may do."""

from __future__ import annotations

from functools import partial
from typing import Final

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..policy import Context
from .data import Contract, Member, User, Workspace
from .web import GET_POST, Demo, Views

__all__ = ["MemberViews", "WorkspaceViews"]

ROLES: Final = {
    "contract": ("owner", "admin", "member"),
    "workspace": ("admin", "editor", "viewer"),
}
WORKSPACE_TYPES: Final = {"full": "Production (full)", "sandbox": "Sandbox"}
_MAX_NAME = 100
#: What the 403 page says to a member who tries what only a tenant admin may do.
ADMINS_DELETE: Final = "Only a tenant admin can delete workspaces. You are signed in as a member."
ADMINS_MEMBERS: Final = (
    "Only a tenant admin can invite or remove members and change their roles."
    " You are signed in as a member."
)


async def _contract(demo: Demo, request: Request) -> tuple[User, Contract] | Response:
    """The signed-in user and their tenant's contract."""
    user = await demo.signed_in(request)
    if isinstance(user, Response):
        return user
    contract = await demo.data.contract(user.tenant_id)
    return (user, contract) if contract is not None else demo.not_found(request)


async def _workspace(demo: Demo, request: Request) -> tuple[User, Contract, Workspace] | Response:
    """As :func:`_contract`, and the contract's workspace in the path."""
    found = await _contract(demo, request)
    if isinstance(found, Response):
        return found
    user, contract = found
    workspace = await demo.data.workspace(contract.id, request.path_params["workspace_id"])
    return (user, contract, workspace) if workspace is not None else demo.not_found(request)


class WorkspaceViews(Views):
    def routes(self) -> list[BaseRoute]:
        workspace = "/workspaces/{workspace_id:int}"
        return [
            Route("/workspaces", self.workspaces, methods=GET_POST),
            Route(workspace, self.workspace),
            self.sensitive(
                f"{workspace}/delete",
                "workspace.delete",
                self.delete,
                context=self.delete_context,
                admins_only=ADMINS_DELETE,
            ),
        ]

    async def delete_context(self, request: Request) -> Context:
        """The rule's context: is this workspace a full (production) one?"""
        found = await _contract(self.demo, request)
        if isinstance(found, Response):
            return {}
        workspace = await self.demo.data.workspace(found[1].id, request.path_params["workspace_id"])
        return {"workspace_type": workspace.type} if workspace is not None else {}

    async def workspaces(self, request: Request) -> Response:
        demo = self.demo
        found = await _contract(demo, request)
        if isinstance(found, Response):
            return found
        user, contract = found
        if request.method == "POST":  # creating a workspace is not sensitive
            form = await demo.form(request)
            if isinstance(form, Response):
                return form
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
            admin=user.is_admin,
        )

    async def workspace(self, request: Request) -> Response:
        demo = self.demo
        found = await _workspace(demo, request)
        if isinstance(found, Response):
            return found
        user, _, workspace = found
        members = await demo.data.members("workspace", workspace.id)
        base = f"/workspaces/{workspace.id}"
        return demo.render(
            request,
            "workspace.html",
            workspace=workspace,
            types=WORKSPACE_TYPES,
            members=members,
            base=base,
            admin=user.is_admin,
        )

    async def delete(self, request: Request) -> Response:
        demo = self.demo
        found = await _workspace(demo, request)
        if isinstance(found, Response):
            return found
        user, contract, workspace = found

        async def delete() -> None:
            await demo.data.delete_workspace(contract.id, workspace.id)
            demo.audit.app_event(
                "WorkspaceDeleted", user.id, workspace=workspace.name, type=workspace.type
            )

        kind = WORKSPACE_TYPES[workspace.type].lower()
        return await demo.confirm(
            request,
            title=f"Delete the workspace {workspace.name}?",
            text=f"This {kind} workspace and its members list are deleted for good.",
            button="Delete workspace",
            cancel="/workspaces",
            act=delete,
            done=f"Deleted the workspace {workspace.name}.",
        )


class MemberViews(Views):
    """Invite, remove and re-role the members of the contract (``scope="contract"``) or
    of a workspace (``scope="workspace"``); the action names follow the scope."""

    def __init__(self, demo: Demo, scope: str) -> None:
        super().__init__(demo)
        self.scope = scope

    def routes(self) -> list[BaseRoute]:
        prefix = "/contract" if self.scope == "contract" else "/workspaces/{workspace_id:int}"
        members = f"{prefix}/members"
        action = f"{self.scope}.member"
        only = ADMINS_MEMBERS
        member = members + "/{member_id:int}"
        routes: list[BaseRoute] = [
            self.sensitive(f"{members}/invite", f"{action}.invite", self.invite, admins_only=only),
            self.sensitive(f"{member}/remove", f"{action}.remove", self.remove, admins_only=only),
            self.sensitive(f"{member}/role", f"{action}.role.change", self.role, admins_only=only),
        ]
        if self.scope == "contract":
            routes.append(Route("/contract", self.contract))
        return routes

    async def _where(self, request: Request) -> tuple[User, int, str, str] | Response:
        """The user, the scope's id, its name and its page."""
        if self.scope == "contract":
            in_contract = await _contract(self.demo, request)
            if isinstance(in_contract, Response):
                return in_contract
            user, contract = in_contract
            return user, contract.id, contract.name, "/contract"
        found = await _workspace(self.demo, request)
        if isinstance(found, Response):
            return found
        user, _, workspace = found
        return user, workspace.id, workspace.name, f"/workspaces/{workspace.id}"

    async def _member(self, request: Request) -> tuple[User, str, str, Member] | Response:
        """As :meth:`_where`, and the member in the path (of this scope only)."""
        found = await self._where(request)
        if isinstance(found, Response):
            return found
        user, scope_id, name, page = found
        member = await self.demo.data.member(self.scope, scope_id, request.path_params["member_id"])
        if member is None:
            return self.demo.not_found(request)
        return user, name, page, member

    async def contract(self, request: Request) -> Response:
        found = await self._where(request)
        if isinstance(found, Response):
            return found
        user, scope_id, name, page = found
        members = await self.demo.data.members("contract", scope_id)
        return self.demo.render(
            request, "contract.html", name=name, members=members, base=page, admin=user.is_admin
        )

    async def invite(self, request: Request) -> Response:
        demo = self.demo
        found = await self._where(request)
        if isinstance(found, Response):
            return found
        user, scope_id, name, page = found

        async def invite(form: FormData) -> Response:
            email = str(form.get("email", "")).strip()[:255]
            role = str(form.get("role", ""))
            if "@" not in email or role not in ROLES[self.scope]:
                return self.member_form(
                    request, name, page, None, "Enter an email and a role.", 400
                )
            await demo.data.add_member(self.scope, scope_id, email, role)
            demo.audit.app_event(
                "MemberInvited", user.id, scope=self.scope, to=name, email=email, role=role
            )
            return demo.redirect(request, page, f"Invited {email} as {role}.")

        blank = partial(self.member_form, request, name, page, None, "")
        return await demo.page_and_form(request, blank, invite)

    async def remove(self, request: Request) -> Response:
        demo = self.demo
        found = await self._member(request)
        if isinstance(found, Response):
            return found
        user, name, page, member = found

        async def remove() -> None:
            await demo.data.remove_member(member.id)
            demo.audit.app_event(
                "MemberRemoved", user.id, scope=self.scope, to=name, email=member.email
            )

        return await demo.confirm(
            request,
            title=f"Remove {member.email} from {name}?",
            text="They lose access at once.",
            button="Remove member",
            cancel=page,
            act=remove,
            done=f"Removed {member.email}.",
        )

    async def role(self, request: Request) -> Response:
        demo = self.demo
        found = await self._member(request)
        if isinstance(found, Response):
            return found
        user, name, page, member = found

        async def change(form: FormData) -> Response:
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

        current = partial(self.member_form, request, name, page, member.email, "", role=member.role)
        return await demo.page_and_form(request, current, change)

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
