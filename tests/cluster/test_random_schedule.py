"""A seeded random schedule across three real nodes on one redis-server: joins, actions, operator
passivations, ``kill -9`` and SIGTERM of nodes with restarts. At the end every session's log is
contiguous, every acknowledged action is in it exactly once with its text, no action is stored twice, and
every observer that stayed connected saw a contiguous, duplicate-free run of ids.

``CLUSTER_SEED=N`` replays a schedule (the seed is in every failure message). Real processes, real time.
"""

from __future__ import annotations

import os
import random
import signal
from pathlib import Path
from typing import Any

import trio

from actors.stores._redis_keys import SessionKeys
from server.client import DisconnectedError, open_client
from server.testing import collect_oh_events, is_status, next_oh_event, user_message
from tests.gateway.server_process import ServerProcess
from tests.support.redis_server import RedisServer

TOKEN = "schedule-token"
SESSIONS = ("r0", "r1")
STEPS = 36


class Observer:
    """One long-lived connection, in a task of its own: the ids it was sent, while it stays connected."""

    def __init__(self, node: int) -> None:
        self.node = node
        self.ids: list[int] = []
        self.alive = True

    async def run(
        self, url: str, query: dict[str, str], *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with open_client(url, query=query, reconnect=False) as client:
            task_status.started()
            while self.alive:
                try:
                    event = await next_oh_event(client, timeout=3600)
                except (DisconnectedError, TimeoutError):
                    self.alive = False
                    return
                if "id" in event and not event.get("status_update"):
                    self.ids.append(event["id"])
                elif is_status("STATUS$STOPPED")(event):
                    self.alive = False


async def post(node: ServerProcess, path: str) -> int:
    stream = await trio.open_tcp_stream("127.0.0.1", node.port)
    async with stream:
        await stream.send_all(
            f"POST {path} HTTP/1.1\r\nhost: t\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 0\r\n"
            "connection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return int(data.split(b" ", 2)[1])


async def test_random_schedule_loses_and_duplicates_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    seed = int(os.environ.get("CLUSTER_SEED", "20261201"))
    rng = random.Random(seed)
    nodes = []
    for k in range(3):
        (tmp_path / f"n{k}").mkdir()
        nodes.append(ServerProcess(tmp_path / f"n{k}", "--node-id", f"n{k}", "--lease-ttl", "2", "--agent",
                                   "none", "--admin-token", TOKEN, "--close-delay", "1",
                                   store=redis_server.url))
    acked: dict[str, dict[int, str]] = {sid: {} for sid in SESSIONS}
    sent = 0
    observers: list[tuple[str, Observer]] = []
    try:
        for node in nodes:
            await trio.to_thread.run_sync(node.start)
        async with trio.open_nursery() as nursery:
            for step in range(STEPS):
                op = rng.choices(["act", "join", "passivate", "kill", "term"], [10, 3, 2, 1, 1])[0]
                sid = rng.choice(SESSIONS)
                k = rng.randrange(3)
                node = nodes[k]
                where = f"seed {seed} step {step} {op} {sid} n{k}"
                if op == "act":
                    async with open_client(node.url, query={"conversation_id": sid}, reconnect=False) as c:
                        await next_oh_event(c, timeout=15)
                        for _ in range(rng.randint(1, 4)):
                            text = f"s{step}-{sent}"
                            sent += 1
                            ack = await c.call("oh_user_action", user_message(text), timeout=15)
                            assert "id" in ack, (where, ack)
                            assert ack["id"] not in acked[sid], (where, ack)
                            acked[sid][ack["id"]] = text
                elif op == "join":
                    latest = max(acked[sid], default=-1)
                    observer = Observer(k)
                    observers.append((sid, observer))
                    query = {"conversation_id": sid, "latest_event_id": str(latest)}
                    await nursery.start(observer.run, node.url, query)
                elif op == "passivate":
                    owner = redis_server.command("GET", SessionKeys(sid).lease)
                    if owner.startswith(b"n"):
                        target = nodes[int(owner.split(b":")[0][1:])]
                        assert await post(target, f"/admin/sessions/{sid}/passivate") == 200, where
                else:
                    sig = signal.SIGKILL if op == "kill" else signal.SIGTERM
                    await trio.to_thread.run_sync(node.stop, sig)
                    for _, observer in observers:
                        if observer.node == k:
                            observer.alive = False
                    await trio.to_thread.run_sync(node.start)
            await trio.sleep(1.0)  # let observers receive the last events
            nursery.cancel_scope.cancel()
        for sid in SESSIONS:
            async with open_client(nodes[0].url, query={"conversation_id": sid}, reconnect=False) as c:
                events = await collect_oh_events(c, until=is_status("STATUS$READY"), timeout=30)
            stored = [e for e in events[:-1]]
            ids = [e["id"] for e in stored]
            assert ids == list(range(len(ids))), f"seed {seed}: {sid} log not contiguous: {ids}"
            messages = [e["message"] for e in stored]
            assert len(set(messages)) == len(messages), f"seed {seed}: {sid}: an action was stored twice"
            by_id = dict(zip(ids, messages, strict=True))
            for eid, text in acked[sid].items():
                assert by_id.get(eid) == text, f"seed {seed}: {sid}: acknowledged {eid}={text} lost"
        for sid, observer in observers:
            run = observer.ids
            assert run == sorted(set(run)), f"seed {seed}: observer of {sid} saw {run}"
            if run:
                assert run == list(range(run[0], run[0] + len(run))), f"seed {seed}: gap in {run}"
        assert sum(len(a) for a in acked.values()) > 20
    finally:
        for node in nodes:
            node.kill()
