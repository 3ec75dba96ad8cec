"""Randomized: Join/Act land at every checkpoint of the passivation path; nothing is lost or duplicated.

Hypothesis chooses, for each injection, the checkpoint (a named await in the supervisor's load path, the
actor's passivation path, or a store operation), which occurrence of it, and the message. The hook delivers
the message right there, while the passivation (or the rehydration after it) is suspended at that await.
Everything runs on trio's MockClock, so thousands of schedules take seconds and replay exactly.
"""

from __future__ import annotations

from typing import Any

import structlog
import structlog.testing
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.config import SupervisorConfig
from actors.echo import EchoAgent
from actors.events import StoredEvent
from actors.messages import Act, ActResult, Join, Leave
from actors.reply import Reply
from actors.stores.memory import MemoryStore
from actors.supervisor import Supervisor
from tests.actors.conftest import FakeConn, user_message

CHECKPOINTS = [
    "passivate:begin",
    "passivate:saved",
    "load:begin",
    "store.load:before",
    "store.load:after",
    "store.create:after",
    "store.save_snapshot:before",
    "store.save_snapshot:after",
    "store.append:before",
    "store.append:after",
    "store.events_after:before",
]
SID = "s"


class HookedStore(MemoryStore):
    def __init__(self, hook: Any) -> None:
        super().__init__()
        self.hook = hook

    async def load(self, session_id: str) -> Any:
        await self.hook("store.load:before", session_id)
        record = await super().load(session_id)
        await self.hook("store.load:after", session_id)
        return record

    async def create(self, session_id: str, owner: str | None) -> Any:
        record = await super().create(session_id, owner)
        await self.hook("store.create:after", session_id)
        return record

    async def save_snapshot(self, session_id: str, snapshot: dict[str, Any], event_id: int) -> None:
        await self.hook("store.save_snapshot:before", session_id)
        await super().save_snapshot(session_id, snapshot, event_id)
        await self.hook("store.save_snapshot:after", session_id)

    async def append(self, session_id: str, events: list[StoredEvent], *, fence: int | None = None) -> None:
        await self.hook("store.append:before", session_id)
        await super().append(session_id, events, fence=fence)
        await self.hook("store.append:after", session_id)

    async def events_after(self, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
        await self.hook("store.events_after:before", session_id)
        return await super().events_after(session_id, after_id, limit)


injection = st.tuples(
    st.sampled_from(CHECKPOINTS),
    st.integers(0, 2),  # which occurrence of that checkpoint
    st.sampled_from(["act", "join", "join_leave", "act_dup"]),
)


async def scenario(injections: list[tuple[str, int, str]], initial: int, echo: bool) -> None:
    seen: dict[str, int] = {}
    plan: dict[tuple[str, int], list[str]] = {}
    for point, nth, kind in injections:
        plan.setdefault((point, nth), []).append(kind)
    replies: list[tuple[str, Reply[ActResult]]] = []
    conns: list[tuple[FakeConn, int]] = []
    texts: list[str] = []
    left: set[str] = set()
    sup: Supervisor

    async def inject(kind: str) -> None:
        if kind.startswith("act"):
            text = f"t{len(texts)}"
            seq = f"q{len(texts)}" if kind == "act_dup" else None
            texts.append(text)  # before any await: concurrent injections get distinct texts
            for _ in range(2 if kind == "act_dup" else 1):  # a retried Act (same client_seq) applies once
                reply: Reply[ActResult] = Reply()
                replies.append((text, reply))
                await sup.deliver(SID, Act(None, user_message(text), reply, client_seq=seq))
        else:
            conn = FakeConn(f"c{len(conns)}")
            latest = (len(conns) % 3) - 1 + max(0, len(texts) - 2)
            conns.append((conn, latest))
            await sup.deliver(SID, Join(conn, latest))
            if kind == "join_leave":
                left.add(conn.id)
                await sup.deliver(SID, Leave(conn.id))

    async def hook(point: str, session_id: str) -> None:
        n = seen.get(point, 0)
        seen[point] = n + 1
        kinds = plan.pop((point, n), ())
        for kind in kinds:
            await inject(kind)
        if kinds:
            await trio.sleep(0.1)  # hold the suspended path here while the injected messages are handled

    store = HookedStore(hook)
    await store.open()
    config = SupervisorConfig(close_delay=10, close_delay_jitter=0, turn_watchdog=None)
    sup = Supervisor(store, EchoAgent if echo else None, config, hooks=hook)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        for _ in range(initial):
            await inject("act")
        seen.clear()  # occurrences count from the first passivation attempt on
        for _ in range(3):  # several idle periods: passivate, rehydrate, passivate...
            await trio.sleep(11)
            if sup.info(SID) is None:
                await inject("act")
        await trio.sleep(11)
        marker = Reply[ActResult]()
        await sup.deliver(SID, Act(None, user_message("marker"), marker))
        await marker.get()
        await trio.sleep(1)
        nursery.cancel_scope.cancel()

    plan.clear()
    log = await store.events_after(SID, -1, 100_000)
    ids = [e.id for e in log]
    assert ids == list(range(len(log))), "ids must be contiguous"
    user_texts = [e.payload["args"]["content"] for e in log if e.payload["source"] == "user"]
    assert sorted(user_texts) == sorted([*texts, "marker"]), "every Act applied exactly once"
    by_text = {e.payload["args"]["content"]: e.id for e in log if e.payload["source"] == "user"}
    for text, reply in replies:
        assert reply.done, f"reply for {text} never answered"
        assert reply.result().event_id == by_text[text]
    if echo:
        answers = [e for e in log if e.payload["source"] == "agent"]
        assert len(answers) == len(user_texts)
    head = ids[-1]
    for conn, latest in conns:
        got = conn.event_ids
        assert len(got) == len(set(got)), f"{conn.id} got a duplicate"
        assert conn.closed is None, f"{conn.id} was closed: {conn.closed}"
        # A cursor ahead of the head at join time is clamped to that head, so the first id may be lower.
        if conn.id not in left:  # still attached: everything after its cursor, in order, up to the head
            if not got:
                assert latest >= head, f"{conn.id} got nothing"
                continue
            assert got[0] <= max(latest, -1) + 1, f"{conn.id} missed the start"
            assert got == list(range(got[0], head + 1)), f"{conn.id} has a gap"
        elif got:  # detached (Leave): what it got is gap-free
            assert got[0] <= max(latest, -1) + 1
            assert got == list(range(got[0], got[0] + len(got))), f"{conn.id} has a gap"


@settings(max_examples=2000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    injections=st.lists(injection, min_size=1, max_size=4),
    initial=st.integers(0, 3),
    echo=st.booleans(),
)
def test_no_message_lost_or_duplicated_around_passivation(injections: list[tuple[str, int, str]],
                                                          initial: int, echo: bool) -> None:
    with structlog.testing.capture_logs():  # no console rendering: thousands of runs
        trio.run(scenario, injections, initial, echo, clock=trio.testing.MockClock(autojump_threshold=0))


def test_every_checkpoint_is_reached() -> None:
    """The hook names above are real: a plain passivate/rehydrate cycle reaches each one."""
    reached: set[str] = set()

    async def main() -> None:
        async def hook(point: str, session_id: str) -> None:
            reached.add(point)

        store = HookedStore(hook)
        await store.open()
        sup = Supervisor(store, EchoAgent, SupervisorConfig(close_delay=1, close_delay_jitter=0), hooks=hook)
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            reply = Reply[ActResult]()
            await sup.deliver(SID, Act(None, user_message("x"), reply))
            await trio.sleep(5)
            await sup.deliver(SID, Join(FakeConn("c"), -1))
            await trio.sleep(1)
            nursery.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert reached == set(CHECKPOINTS)
