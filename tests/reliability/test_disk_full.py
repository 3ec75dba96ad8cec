"""The disk filling up under a running server: error acks with a clear msg_id, connections and other
sessions kept, nothing acknowledged lost, recovery by itself once space returns.

A real ``supervisor serve`` keeps its SQLite store on a small tmpfs the test mounts (root only, as in CI;
skipped with the reason otherwise, and a failure when ``CI=true``). A filler file takes the free space;
actions then get ``STATUS$ERROR_STORE_FULL``; removing the filler lets the next actions through. At the
end the database holds exactly the acknowledged actions, ids contiguous.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from server.client import open_client
from tests.gateway.server_process import ServerProcess


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    reason = None
    if os.geteuid() != 0:
        reason = "mounting a tmpfs needs root (CI runs as root)"
    else:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            reason = f"cannot mount a tmpfs: {done.stderr.strip()}"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the disk-full test: {reason}")
        pytest.skip(reason)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as file:
        try:
            while True:
                file.write(b"\0" * 65536)
                file.flush()
        except OSError:
            pass
    return filler


def _action(text: str, size: int = 0) -> dict[str, Any]:
    return {"action": "message", "args": {"content": text, "pad": "x" * size}}


async def test_a_full_disk_refuses_actions_and_recovers_by_itself(small_disk: Path, tmp_path: Path) -> None:
    db = small_disk / "s.db"
    acked: dict[str, list[int]] = {"a": [], "b": []}
    with ServerProcess(tmp_path, "--agent", "none", db=db) as server:
        async with open_client(server.url, query={"conversation_id": "a", "latest_event_id": -1}) as a, \
                open_client(server.url, query={"conversation_id": "b", "latest_event_id": -1}) as b:
            for client, name in ((a, "a"), (b, "b")):
                ack = await client.call("oh_user_action", _action(f"{name} before"))
                acked[name].append(ack["id"])
            filler = await trio.to_thread.run_sync(_fill, small_disk)
            errors = []
            for attempt in range(200):  # the WAL has some room left: write until it is gone
                ack = await a.call("oh_user_action", _action(f"a full {attempt}", 60_000))
                if "error" in ack:
                    errors.append(ack)
                    break
                acked["a"].append(ack["id"])
            assert errors, "the disk never filled up"
            assert errors[0]["msg_id"] == "STATUS$ERROR_STORE_FULL", errors
            # Both connections are still up and the sessions alive: an answer, not a disconnect.
            ack_b = await b.call("oh_user_action", _action("b during", 60_000))
            assert ack_b.get("msg_id") in (None, "STATUS$ERROR_STORE_FULL"), ack_b
            if "id" in ack_b:
                acked["b"].append(ack_b["id"])
            assert not a.closed and not b.closed
            filler.unlink()  # space returns: the next actions are stored, nobody restarted anything
            for client, name in ((a, "a"), (b, "b")):
                ack = await client.call("oh_user_action", _action(f"{name} after"))
                assert "id" in ack, ack
                acked[name].append(ack["id"])
        assert server.stop() == 0
    with sqlite3.connect(db) as conn:
        for name, ids in acked.items():
            stored = [row[0] for row in conn.execute(
                "SELECT id FROM events WHERE session_id = ? ORDER BY id", (name,))]
            assert stored == list(range(len(stored))), (name, stored)  # contiguous, each once
            assert stored == ids, (name, stored, ids)  # exactly the acknowledged actions
