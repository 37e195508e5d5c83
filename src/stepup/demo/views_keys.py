"""API keys (read, copy, regenerate) and SSH keys (add, remove): all sensitive.

Each sensitive action is a page (GET) and its form (POST) at one address, both behind
the route guard, so the re-authentication prompt comes before the user fills anything
in and brings them back to the same page.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import MalformedInputError
from .data import ApiKey, User
from .keys import new_api_key, read_ssh_key
from .web import Views

__all__ = ["KeyViews"]

_MAX_TITLE = 100


class KeyViews(Views):
    def routes(self) -> list[BaseRoute]:
        key = "/api-keys/{key_id:int}"
        return [
            Route("/api-keys", self.api_keys),
            self.sensitive(key, "api_key.read", self.read, methods=["GET"]),
            self.sensitive(f"{key}/copy", "api_key.copy", self.copy, methods=["GET"]),
            self.sensitive(f"{key}/regenerate", "api_key.regenerate", self.regenerate),
            Route("/ssh-keys", self.ssh_keys),
            self.sensitive("/ssh-keys/new", "ssh_key.add", self.add_ssh_key),
            self.sensitive("/ssh-keys/{key_id:int}/remove", "ssh_key.remove", self.remove_ssh_key),
        ]

    async def _key(self, request: Request) -> tuple[User, ApiKey] | Response:
        user = await self.demo.signed_in(request)
        if isinstance(user, Response):
            return user
        key = await self.demo.data.api_key(user.id, request.path_params["key_id"])
        return (user, key) if key is not None else self.demo.not_found(request)

    # API keys ----------------------------------------------------------------

    async def api_keys(self, request: Request) -> Response:
        user = await self.demo.signed_in(request)
        if isinstance(user, Response):
            return user
        keys = await self.demo.data.api_keys(user.id)
        return self.demo.render(request, "api_keys.html", user=user, keys=keys)

    async def read(self, request: Request) -> Response:
        found = await self._key(request)
        if isinstance(found, Response):
            return found
        user, key = found
        self.demo.audit.app_event("ApiKeyRead", user.id, key=key.label)
        return self.demo.render(request, "api_key.html", user=user, key=key, copying=False)

    async def copy(self, request: Request) -> Response:
        """JSON for the page's copy button; a page with the key selected otherwise."""
        found = await self._key(request)
        if isinstance(found, Response):
            return found
        user, key = found
        self.demo.audit.app_event("ApiKeyCopied", user.id, key=key.label)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"key": key.secret}, headers={"Cache-Control": "no-store"})
        return self.demo.render(request, "api_key.html", user=user, key=key, copying=True)

    async def regenerate(self, request: Request) -> Response:
        demo = self.demo
        found = await self._key(request)
        if isinstance(found, Response):
            return found
        user, key = found

        async def regenerate() -> None:
            await demo.data.replace_api_key(user.id, key.id, new_api_key(), demo.clock())
            demo.audit.app_event("ApiKeyRegenerated", user.id, key=key.label)

        return await demo.confirm(
            request,
            title=f"Regenerate the API key {key.label}?",
            text="The current key stops working at once. Scripts that use it will need "
            "the new one.",
            button="Regenerate key",
            cancel="/api-keys",
            act=regenerate,
            done=f"The API key {key.label} was regenerated. Show it to copy the new key.",
        )

    # SSH keys ----------------------------------------------------------------

    async def ssh_keys(self, request: Request) -> Response:
        user = await self.demo.signed_in(request)
        if isinstance(user, Response):
            return user
        keys = await self.demo.data.ssh_keys(user.id)
        return self.demo.render(request, "ssh_keys.html", user=user, keys=keys)

    async def add_ssh_key(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user

        def page(error: str = "", title: str = "", status: int = 200) -> Response:
            return demo.render(request, "ssh_key_new.html", status=status, error=error, title=title)

        async def add(form: FormData) -> Response:
            title = " ".join(str(form.get("title", "")).split())[:_MAX_TITLE]
            try:
                line, fingerprint = read_ssh_key(form.get("public_key"))
            except MalformedInputError as exc:
                return page(str(exc), title, 400)
            now = demo.clock()
            await demo.data.add_ssh_key(user.id, title or "SSH key", line, fingerprint, now)
            demo.audit.app_event("SshKeyAdded", user.id, fingerprint=fingerprint)
            return demo.redirect(request, "/ssh-keys", f"Added the SSH key {fingerprint}.")

        return await demo.page_and_form(request, page, add)

    async def remove_ssh_key(self, request: Request) -> Response:
        demo = self.demo
        user = await demo.signed_in(request)
        if isinstance(user, Response):
            return user
        key = await demo.data.ssh_key(user.id, request.path_params["key_id"])
        if key is None:
            return demo.not_found(request)

        async def remove() -> None:
            await demo.data.remove_ssh_key(user.id, key.id)
            demo.audit.app_event("SshKeyRemoved", user.id, fingerprint=key.fingerprint)

        return await demo.confirm(
            request,
            title=f"Remove the SSH key {key.title}?",
            text=f"{key.fingerprint} will no longer be able to sign in.",
            button="Remove key",
            cancel="/ssh-keys",
            act=remove,
            done=f"Removed the SSH key {key.title}.",
        )
