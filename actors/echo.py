"""The default agent: answers each user message with an agent message.

Owns: ``EchoAgent``. Knows nothing but the ``Agent`` interface.
"""

from __future__ import annotations

from typing import Any

from actors.agent import Emit, agent_message
from actors.events import StoredEvent


class EchoAgent:
    """Replies ``"echo: <content>"`` to user ``message`` actions; ignores other actions. Keeps a count."""

    __slots__ = ("replies",)

    def __init__(self) -> None:
        self.replies = 0

    async def start(self, snapshot: dict[str, Any] | None) -> None:
        self.replies = int((snapshot or {}).get("replies", 0))

    async def handle(self, event: StoredEvent, emit: Emit) -> None:
        payload = event.payload
        if payload.get("action") != "message":
            return
        args = payload.get("args")
        content = args.get("content", "") if isinstance(args, dict) else ""
        self.replies += 1
        await emit(agent_message(f"echo: {content}"))

    def snapshot(self) -> dict[str, Any] | None:
        return {"replies": self.replies}
