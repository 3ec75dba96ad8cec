"""The CLI's client of the admin HTTP API.

Owns: ``AdminClient`` (one method per admin route, returning the decoded JSON) and the translation of
every failure into a ``CliError`` with a one-line message and an exit code: server down, wrong token,
unknown session, server error. Knows the routes of ``server.operator_api.api`` but nothing of the server's
internals; the HTTP exchange is ``server.cli.http_client``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from server.cli.http_client import BadResponse, HttpResponse, HttpTimeout, Unreachable, request
from server.cli.options import EXIT_AUTH, EXIT_ERROR, EXIT_UNREACHABLE, ClientOptions, CliError, resolve_token


class AdminClient:
    def __init__(self, url: str, token: str, *, timeout: float = 30.0) -> None:
        self.url = url
        self._token = token
        self.timeout = timeout

    @classmethod
    def from_options(cls, options: ClientOptions) -> AdminClient:
        return cls(options.url, resolve_token(options), timeout=options.timeout)

    # ---- routes ------------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        return await self._call("GET", "/admin/status")

    async def list_sessions(
        self, *, states: list[str] | None = None, after: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        query: dict[str, str | int] = {"limit": limit}
        if states:
            query["state"] = ",".join(states)
        if after:
            query["after"] = after
        return await self._call("GET", "/admin/sessions", query)

    async def show(self, session_id: str) -> dict[str, Any]:
        return await self._call("GET", _session_path(session_id))

    async def passivate(self, session_id: str) -> dict[str, Any]:
        return await self._call("POST", _session_path(session_id, "passivate"))

    async def kill(self, session_id: str) -> dict[str, Any]:
        return await self._call("POST", _session_path(session_id, "kill"))

    async def delete(self, session_id: str) -> dict[str, Any]:
        return await self._call("DELETE", _session_path(session_id))

    async def events(self, session_id: str, *, after: int = -1, limit: int = 100) -> dict[str, Any]:
        return await self._call("GET", _session_path(session_id, "events"), {"after": after, "limit": limit})

    # ---- plumbing ----------------------------------------------------------------------------------

    async def _call(
        self, method: str, path: str, query: dict[str, str | int] | None = None
    ) -> dict[str, Any]:
        try:
            response = await request(
                method, self.url, path, query=query,
                headers=[("Authorization", f"Bearer {self._token}"), ("Accept", "application/json")],
                timeout=self.timeout,
            )
        except ValueError as exc:
            raise CliError(f"bad --url: {exc}", EXIT_UNREACHABLE) from None
        except Unreachable as exc:
            raise CliError(
                f"cannot reach the server at {self.url}: {exc} (is `supervisor serve` running?)",
                EXIT_UNREACHABLE,
            ) from None
        except HttpTimeout as exc:
            raise CliError(str(exc), EXIT_UNREACHABLE) from None
        except BadResponse as exc:
            raise CliError(f"{self.url} is not a Session Supervisor: {exc}", EXIT_UNREACHABLE) from None
        return _decode(self.url, response)


def _session_path(session_id: str, action: str | None = None) -> str:
    path = "/admin/sessions/" + quote(session_id, safe="")
    return path if action is None else f"{path}/{action}"


def _decode(url: str, response: HttpResponse) -> dict[str, Any]:
    try:
        body = response.json()
    except BadResponse:
        body = None
    if response.status == 200 and isinstance(body, dict):
        return body
    message = _error_message(body) or f"HTTP {response.status}"
    if response.status == 401:
        raise CliError(
            f"the server refused the admin token ({message}); check --token, SUPERVISOR_ADMIN_TOKEN or "
            "--data-dir",
            EXIT_AUTH,
        )
    if response.status == 404 and body is None:
        raise CliError(f"{url} has no admin API (HTTP 404): is it a Session Supervisor?", EXIT_UNREACHABLE)
    if body is None:
        raise CliError(
            f"{url} is not a Session Supervisor (HTTP {response.status}, not JSON)", EXIT_UNREACHABLE
        )
    raise CliError(message, EXIT_ERROR)


def _error_message(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
        return str(message) if message else None
    return None
