"""``supervisor serve`` stopped (SIGTERM: graceful; SIGKILL: crash) and started again on the same SQLite
file: sessions come back with their history, ids continue, and nothing acknowledged is lost."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
import trio

from server.client import DisconnectedError, open_client
from server.testing import collect_oh_events, is_status, next_oh_event, user_message
from tests.gateway.server_process import ServerProcess


def query(cid: str, latest: int = -1) -> dict[str, str]:
    return {"conversation_id": cid, "latest_event_id": str(latest)}


async def history(server: ServerProcess, cid: str) -> list[dict[str, Any]]:
    """Every stored event of ``cid``, replayed from the start (READY ends the replay)."""
    async with open_client(server.url, query=query(cid), reconnect=False) as client:
        events = await collect_oh_events(client, until=is_status("STATUS$READY"), timeout=20)
    return events[:-1]


async def test_sigterm_passivates_sessions_and_they_come_back(tmp_path: Path) -> None:
    with ServerProcess(tmp_path) as server:
        async with open_client(server.url, query=query("graceful"), reconnect=False) as client:
            await next_oh_event(client)
            acks = [await client.call("oh_user_action", user_message(f"m{i}")) for i in range(3)]
            assert acks == [{"id": 0}, {"id": 2}, {"id": 4}]
            await collect_oh_events(client, until=5)
            assert await trio.to_thread.run_sync(server.stop, signal.SIGTERM) == 0
            # a graceful stop tells the connection before closing it
            assert is_status("STATUS$STOPPED")(await next_oh_event(client))
            with pytest.raises(DisconnectedError):
                await next_oh_event(client)
        await trio.to_thread.run_sync(server.start)
        events = await history(server, "graceful")
        assert [e["id"] for e in events] == list(range(6))
        assert [e["message"] for e in events[::2]] == ["m0", "m1", "m2"]
        async with open_client(server.url, query=query("graceful", 5), reconnect=False) as client:
            assert is_status("STATUS$READY")(await next_oh_event(client))
            assert await client.call("oh_user_action", user_message("after")) == {"id": 6}


async def test_sigkill_loses_nothing_acknowledged(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, "--agent", "none") as server:
        acked: dict[int, str] = {}
        async with open_client(server.url, query=query("crash"), reconnect=False) as client:
            await next_oh_event(client)

            async def send_until_killed() -> None:
                i = 0
                while True:
                    text = f"burst-{i}"
                    try:
                        ack = await client.call("oh_user_action", user_message(text), timeout=5)
                    except (DisconnectedError, TimeoutError):
                        return
                    acked[ack["id"]] = text
                    i += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(send_until_killed)
                while len(acked) < 20:  # noqa: ASYNC110 - the sender task fills it
                    await trio.sleep(0.01)
                await trio.to_thread.run_sync(server.kill)  # mid-burst, no goodbye
        assert len(acked) >= 20
        await trio.to_thread.run_sync(server.start)
        events = await history(server, "crash")
        ids = [e["id"] for e in events]
        assert ids == list(range(len(ids)))  # contiguous from 0: no hole
        stored = {e["id"]: e["message"] for e in events}
        assert all(stored.get(eid) == text for eid, text in acked.items()), "an acknowledged action was lost"
        async with open_client(server.url, query=query("crash", ids[-1]), reconnect=False) as client:
            await next_oh_event(client)
            assert await client.call("oh_user_action", user_message("after")) == {"id": len(ids)}
