"""Only the tenant admin changes memberships and roles and deletes workspaces. A member
used to get the Contract and Workspace pages with every control, and could remove the
admin from the contract, change roles and delete Production: re-authentication stood in
the way (with the flag on), and re-authentication is not authorisation. Now a member
gets a 403 page that says why, before any prompt, and the pages show them no controls."""

from __future__ import annotations

import re
from typing import Any

import pytest

from e2e.journeys import ADMIN, MEMBER
from e2e.test_demo_app import csrf, flag_on, sign_in
from stepup.testing import SettableClock

MEMBERS_ONLY_ADMIN = (
    "Only a tenant admin can invite or remove members and change their roles."
    " You are signed in as a member."
)
DELETE_ONLY_ADMIN = "Only a tenant admin can delete workspaces. You are signed in as a member."
#: (path, the form a tenant admin would send, what the 403 page says)
CHANGES = [
    ("/contract/members/1/remove", {}, MEMBERS_ONLY_ADMIN),  # the admin, from the contract
    ("/contract/members/1/role", {"role": "member"}, MEMBERS_ONLY_ADMIN),
    (
        "/contract/members/invite",
        {"email": "friend@acme.test", "role": "owner"},
        MEMBERS_ONLY_ADMIN,
    ),
    ("/workspaces/1/members/3/remove", {}, MEMBERS_ONLY_ADMIN),
    ("/workspaces/1/members/4/role", {"role": "admin"}, MEMBERS_ONLY_ADMIN),  # their own
    (
        "/workspaces/1/members/invite",
        {"email": "friend@acme.test", "role": "admin"},
        MEMBERS_ONLY_ADMIN,
    ),
    ("/workspaces/1/delete", {}, DELETE_ONLY_ADMIN),  # Production
    ("/workspaces/2/delete", {}, DELETE_ONLY_ADMIN),  # the sandbox too
]
IDS = [path for path, _, _ in CHANGES]


def _state(client: Any) -> tuple[Any, ...]:
    """The contract's and the workspaces' members, and the workspaces, as stored."""
    data = client.app.state.demo.data

    async def read() -> tuple[Any, ...]:
        return (
            await data.members("contract", 1),
            await data.members("workspace", 1),
            await data.members("workspace", 2),
            await data.workspaces(1),
        )

    return client.portal.call(read)


def _audit_names(client: Any) -> list[str]:
    demo = client.app.state.demo
    client.portal.call(demo.audit.flush)
    rows = client.portal.call(lambda: demo.data.audit(tenant_id="acme", limit=500))
    return [row.name for row in rows]


@pytest.mark.parametrize("flag", [False, True], ids=["flag off", "flag on"])
@pytest.mark.parametrize(("path", "form", "why"), CHANGES, ids=IDS)
def test_a_member_is_refused_with_the_reason_and_nothing_changes(
    app_client: tuple[Any, SettableClock], path: str, form: dict[str, str], why: str, flag: bool
) -> None:
    client, _ = app_client
    if flag:
        flag_on(client)
    before = _state(client)
    sign_in(client, MEMBER)
    token = csrf(client.get("/account").text)
    page = client.get(path)
    # Refused before the guard: no prompt to confirm who they are for what they may not do.
    assert page.status_code == 403
    assert "<h1>Not allowed</h1>" in page.text
    assert why in page.text
    answer = client.post(path, data={"csrf_token": token, **form})
    assert answer.status_code == 403
    assert why in answer.text
    assert _state(client) == before
    changed = {"MemberInvited", "MemberRemoved", "MemberRoleChanged", "WorkspaceDeleted"}
    assert not changed & set(_audit_names(client))


def test_a_member_sees_no_controls_for_what_only_an_admin_may_do(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    sign_in(client, MEMBER)
    for path in ("/contract", "/workspaces/1", "/workspaces/2"):
        page = client.get(path).text
        assert MEMBER in page  # the members are listed
        assert not re.search(r'href="[^"]*/members/', page), path
        assert "Invite a member" not in page
        assert "Only a tenant admin can invite or remove members" in page
    workspaces = client.get("/workspaces").text
    assert "Production" in workspaces
    assert not re.search(r'href="/workspaces/\d+/delete"', workspaces)
    assert "Only a tenant admin can delete workspaces." in workspaces
    assert 'name="name"' in workspaces  # creating a workspace is still anyone's


def test_the_admin_still_has_the_controls_and_may_use_them(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    contract = client.get("/contract").text
    assert 'href="/contract/members/2/remove"' in contract
    assert 'href="/contract/members/invite"' in contract
    assert 'href="/workspaces/2/delete"' in client.get("/workspaces").text
    page = client.get("/workspaces/2/delete")
    assert page.status_code == 200
    done = client.post("/workspaces/2/delete", data={"csrf_token": csrf(page.text)})
    assert (done.status_code, done.headers["location"]) == (303, "/workspaces")
    assert [w.name for w in _state(client)[3]] == ["Production"]


def test_signed_out_the_member_pages_still_lead_to_sign_in(
    app_client: tuple[Any, SettableClock],
) -> None:
    client, _ = app_client
    answer = client.get("/contract/members/1/remove")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
