"""Deleting a session for good: ``DELETE /admin/sessions/ID`` (``supervisor sessions delete ID``).

Owns: ``delete_session``. A live session is killed first (no snapshot: it is about to be deleted; its
runtime's processes are ended before the kill returns), then its log and snapshot are deleted from the
store, then its runtime workspace (through the callable the app gives, when the agent has workspaces).
A client connecting again after the deletion starts a new, empty session of that id. Knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from actors.supervisor import Supervisor


async def delete_session(
    supervisor: Supervisor, session_id: str, delete_workspace: Callable[[str], Awaitable[bool]] | None
) -> dict[str, Any] | None:
    """What was deleted, or None if the session was neither live, stored nor had a workspace."""
    was_live = await supervisor.kill(session_id)
    store = supervisor.store
    stored = await store.load(session_id) is not None
    if stored:
        await store.delete(session_id)
    workspace = await delete_workspace(session_id) if delete_workspace is not None else False
    if not (was_live or stored or workspace):
        return None
    return {"session_id": session_id, "was_live": was_live, "deleted_log": stored,
            "deleted_workspace": workspace}
