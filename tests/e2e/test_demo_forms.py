"""Every form of the demo, without a browser: what a good post does (the redirect, the
flash, the audit event), what a bad one gets (400 and the message, nothing changed),
that each needs its CSRF token, and that each sensitive one stays behind the prompt.
The views share their form handling, so these pin down that each still says its own."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from e2e.journeys import ADMIN, MEMBER, PASSWORDS
from e2e.test_demo_app import csrf, flag_on, sign_in
from integrations.resume_support import as_multidict, resume_form
from stepup.demo.keys import new_demo_ssh_key
from stepup.testing import SettableClock

NEW_KEY, NEW_FINGERPRINT = new_demo_ssh_key("me@host")
EXPIRED = "This form expired or did not come from this site."


@dataclass(frozen=True)
class Form:
    """One form: where it is, what its page says, a good post and what that leads to."""

    path: str
    heading: str
    data: dict[str, str]
    location: str
    flash: str
    event: str
    details: tuple[str, ...] = ()
    bad: tuple[tuple[dict[str, str], str], ...] = field(default=())
    sensitive: bool = True


FORMS = [
    Form(
        "/account/edit",
        "Edit your details",
        {"name": "  Ada   Admin ", "email": " ada@acme.test "},
        "/account",
        "Your details were saved.",
        "UserUpdated",
        bad=(
            ({"name": " ", "email": "ada@acme.test"}, "Enter a name and an email address."),
            ({"name": "Ada", "email": "no-at-sign"}, "Enter a name and an email address."),
            ({"name": "Ada", "email": MEMBER}, "Another user has this email address."),
        ),
    ),
    Form(
        "/api-keys/1/regenerate",
        "Regenerate the API key Deploy bot?",
        {},
        "/api-keys",
        "The API key Deploy bot was regenerated. Show it to copy the new key.",
        "ApiKeyRegenerated",
        ("key=Deploy bot",),
    ),
    Form(
        "/ssh-keys/new",
        "Add an SSH key",
        {"title": " Build   server ", "public_key": NEW_KEY},
        "/ssh-keys",
        f"Added the SSH key {NEW_FINGERPRINT}.",
        "SshKeyAdded",
        (f"fingerprint={NEW_FINGERPRINT}",),
        bad=(
            ({"title": "X", "public_key": "ssh-rsa not-a-key"}, "not an OpenSSH public key"),
            ({"title": "X", "public_key": ""}, "Paste one OpenSSH public key line."),
        ),
    ),
    Form(
        "/ssh-keys/1/remove",
        "Remove the SSH key Laptop?",
        {},
        "/ssh-keys",
        "Removed the SSH key Laptop.",
        "SshKeyRemoved",
        ("fingerprint=SHA256:",),
    ),
    Form(
        "/workspaces/2/delete",
        "Delete the workspace Sandbox?",
        {},
        "/workspaces",
        "Deleted the workspace Sandbox.",
        "WorkspaceDeleted",
        ("workspace=Sandbox", "type=sandbox"),
        sensitive=False,  # a sandbox: the rule's context says so
    ),
    Form(
        "/workspaces/1/delete",
        "Delete the workspace Production?",
        {},
        "/workspaces",
        "Deleted the workspace Production.",
        "WorkspaceDeleted",
        ("workspace=Production", "type=full"),
    ),
    Form(
        "/contract/members/invite",
        "Invite a member to Acme platform contract",
        {"email": " new@acme.test ", "role": "admin"},
        "/contract",
        "Invited new@acme.test as admin.",
        "MemberInvited",
        ("scope=contract", "to=Acme platform contract", "email=new@acme.test", "role=admin"),
        bad=(
            ({"email": "new@acme.test", "role": "editor"}, "Enter an email and a role."),
            ({"email": "nobody", "role": "admin"}, "Enter an email and a role."),
        ),
    ),
    Form(
        "/workspaces/1/members/invite",
        "Invite a member to Production",
        {"email": "new@acme.test", "role": "editor"},
        "/workspaces/1",
        "Invited new@acme.test as editor.",
        "MemberInvited",
        ("scope=workspace", "to=Production", "role=editor"),
        bad=(({"email": "new@acme.test", "role": "owner"}, "Enter an email and a role."),),
    ),
    Form(
        "/contract/members/2/remove",
        f"Remove {MEMBER} from Acme platform contract?",
        {},
        "/contract",
        f"Removed {MEMBER}.",
        "MemberRemoved",
        ("scope=contract", f"email={MEMBER}"),
    ),
    Form(
        "/workspaces/1/members/4/remove",
        f"Remove {MEMBER} from Production?",
        {},
        "/workspaces/1",
        f"Removed {MEMBER}.",
        "MemberRemoved",
        ("scope=workspace", "to=Production"),
    ),
    Form(
        "/contract/members/2/role",
        f"Change the role of {MEMBER}",
        {"role": "admin"},
        "/contract",
        f"{MEMBER} is now admin.",
        "MemberRoleChanged",
        ("scope=contract", "old=member", "new=admin"),
        bad=(({"role": "viewer"}, "Pick a role."),),
    ),
    Form(
        "/workspaces/1/members/4/role",
        f"Change the role of {MEMBER}",
        {"role": "editor"},
        "/workspaces/1",
        f"{MEMBER} is now editor.",
        "MemberRoleChanged",
        ("scope=workspace", "to=Production", "old=viewer", "new=editor"),
        bad=(({"role": ""}, "Pick a role."),),
    ),
]
IDS = [form.path for form in FORMS]


def heading(page: str) -> str:
    match = re.search(r"<h1>(.*?)</h1>", page, re.S)
    assert match is not None, "no heading"
    return html.unescape(match.group(1))


def flashes(page: str) -> list[str]:
    return [html.unescape(text) for text in re.findall(r'<p class="flash"[^>]*>(.*?)</p>', page)]


def audit_rows(client: Any, event: str) -> list[str]:
    page = client.get("/audit").text
    rows = re.findall(r"<tr class=\"source-app\">(.*?)</tr>", page, re.S)
    return [html.unescape(row) for row in rows if f'class="event-name">{event}<' in row]


@pytest.mark.parametrize("form", FORMS, ids=IDS)
def test_a_good_post_acts_once_flashes_and_is_audited(
    app_client: tuple[Any, SettableClock], form: Form
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    page = client.get(form.path)
    assert page.status_code == 200
    assert heading(page.text) == form.heading
    assert page.headers["cache-control"] == "private, no-store"  # each form is guarded
    assert audit_rows(client, form.event) == []

    done = client.post(form.path, data={**form.data, "csrf_token": csrf(page.text)})
    assert (done.status_code, done.headers["location"]) == (303, form.location)
    landing = client.get(form.location)
    assert flashes(landing.text) == [form.flash]
    assert flashes(client.get(form.location).text) == []  # shown once
    rows = audit_rows(client, form.event)
    assert len(rows) == 1
    assert ADMIN.split("@")[0] in rows[0]  # the user id
    for detail in form.details:
        assert detail in rows[0]


@pytest.mark.parametrize("form", FORMS, ids=IDS)
def test_a_post_without_its_csrf_token_changes_nothing(
    app_client: tuple[Any, SettableClock], form: Form
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    for token in ({}, {"csrf_token": "forged"}):
        refused = client.post(form.path, data={**form.data, **token})
        assert refused.status_code == 403
        assert heading(refused.text) == "Please try again"
        assert EXPIRED in refused.text
    assert audit_rows(client, form.event) == []
    assert heading(client.get(form.path).text) == form.heading  # still there, unchanged


@pytest.mark.parametrize("form", [f for f in FORMS if f.bad], ids=[f.path for f in FORMS if f.bad])
def test_a_bad_post_is_answered_400_with_its_message(
    app_client: tuple[Any, SettableClock], form: Form
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    token = csrf(client.get(form.path).text)
    for data, message in form.bad:
        answer = client.post(form.path, data={**data, "csrf_token": token})
        assert answer.status_code == 400
        assert heading(answer.text) == form.heading
        error = re.search(r'<p class="error" role="alert">(.*?)</p>', answer.text)
        assert error is not None
        assert message in html.unescape(error.group(1))
        token = csrf(answer.text)
    assert audit_rows(client, form.event) == []


@pytest.mark.parametrize("form", [f for f in FORMS if f.sensitive], ids=lambda f: f.path)
def test_each_sensitive_form_asks_first_then_goes_through(
    app_client: tuple[Any, SettableClock], form: Form
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    token = csrf(client.get(form.path).text)
    flag_on(client)
    for method in ("GET", "POST"):
        data = {**form.data, "csrf_token": token} if method == "POST" else None
        asked = client.request(method, form.path, data=data)
        assert asked.status_code == 303
        assert asked.headers["location"].startswith("/stepup/reauth?next=")
    assert audit_rows(client, form.event) == []

    prompt = client.get(asked.headers["location"])
    back = client.post(
        asked.headers["location"],
        data={"csrf_token": csrf(prompt.text), "password": PASSWORDS[ADMIN]},
    )
    # The interrupted POST is sent again after the re-authentication (the resume page,
    # with a fresh CSRF token): it goes through once.
    target, fields = resume_form(back.text)
    assert target == form.path
    assert dict(fields)["csrf_token"] != token
    done = client.post(target, data=as_multidict(fields))
    assert done.headers["location"] == form.location
    assert len(audit_rows(client, form.event)) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api-keys/3/regenerate",  # the member's key
        "/api-keys/99/regenerate",
        "/ssh-keys/99/remove",
        "/workspaces/99/delete",
        "/workspaces/99/members/invite",
        "/contract/members/3/remove",  # a workspace's member, not the contract's
        "/workspaces/2/members/4/remove",  # another workspace's member
        "/workspaces/1/members/99/role",
    ],
)
def test_what_is_not_there_is_404_for_get_and_post(
    app_client: tuple[Any, SettableClock], path: str
) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    token = csrf(client.get("/account").text)
    for method in ("GET", "POST"):
        data = {"csrf_token": token, "role": "admin"} if method == "POST" else None
        missing = client.request(method, path, data=data)
        assert missing.status_code == 404
        assert heading(missing.text) == "Not found"


@pytest.mark.parametrize("form", FORMS, ids=IDS)
def test_signed_out_forms_lead_to_sign_in(
    app_client: tuple[Any, SettableClock], form: Form
) -> None:
    client, _ = app_client
    for method in ("GET", "POST"):
        answer = client.request(method, form.path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")


def test_creating_a_workspace_is_not_sensitive(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    flag_on(client)
    page = client.get("/workspaces")
    token = csrf(page.text)

    refused = client.post("/workspaces", data={"name": "Staging", "type": "full"})
    assert refused.status_code == 403
    bad = client.post("/workspaces", data={"name": " ", "type": "full", "csrf_token": token})
    assert bad.status_code == 200  # the list again, with the flash
    assert flashes(bad.text) == ["Give the workspace a name and a type."]
    odd = client.post("/workspaces", data={"name": "X", "type": "other", "csrf_token": token})
    assert flashes(odd.text) == ["Give the workspace a name and a type."]
    assert audit_rows(client, "WorkspaceCreated") == []

    data = {"name": "  Staging  area ", "type": "sandbox", "csrf_token": token}
    done = client.post("/workspaces", data=data)
    assert (done.status_code, done.headers["location"]) == (303, "/workspaces")
    listing = client.get("/workspaces").text
    assert flashes(listing) == ["Created the workspace Staging area."]
    assert ">Staging area</a>" in listing
    (row,) = audit_rows(client, "WorkspaceCreated")
    assert "workspace=Staging area" in row
    assert "type=sandbox" in row


def test_sign_out_needs_its_token(app_client: tuple[Any, SettableClock]) -> None:
    client, _ = app_client
    sign_in(client, ADMIN)
    page = client.get("/logout")
    assert page.status_code == 200
    assert client.post("/logout").status_code == 403
    assert client.get("/account").status_code == 200  # still signed in
    out = client.post("/logout", data={"csrf_token": csrf(page.text)})
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert client.get("/account").headers["location"].startswith("/login")
