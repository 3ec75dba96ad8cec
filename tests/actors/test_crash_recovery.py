"""Crashes never leave a sender waiting: the unhandled rest of a crashed batch goes to the next incarnation,
a kill ends an actor that gives up, and shutdown does not wait for an actor that crashed while passivating."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actors.errors import ActorError
from actors.messages import Act, ActResult, Join
from actors.reply import Reply
from actors.stores.memory import MemoryStore
from tests.actors.conftest import FakeConn, join, running, settle, user_message


class FlakyAppend(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    async def append(self, session_id: str, events: Any, *, fence: int | None = None) -> None:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk hiccup")
        await super().append(session_id, events, fence=fence)


async def test_a_crash_mid_batch_hands_the_rest_of_the_batch_to_the_next_incarnation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FlakyAppend()
    async with store, running(store, None) as sup:
        first = await join(sup, "s", "c0")
        await settle()
        store.fail_next = True
        failed: Reply[ActResult] = Reply()
        later: Reply[ActResult] = Reply()
        late = FakeConn("late")
        # One batch (no await between the puts): Act (its append fails: the actor crashes), Join, Act.
        assert sup.tell_nowait("s", Act("c0", user_message("a"), failed))
        assert sup.tell_nowait("s", Join(late, -1))
        assert sup.tell_nowait("s", Act("c0", user_message("b"), later))
        with pytest.raises(ActorError):
            await failed.get()
        with trio.fail_after(60):
            result = await later.get()
        assert result.event_id == 0  # the failed append stored nothing: ids continue without a hole
        await settle()
        assert "STATUS$READY" in late.statuses and late.event_ids == [0]
        assert first.event_ids == [0]
        assert sup.info("s").restarts == 1  # type: ignore[union-attr]


class FailingLoad(MemoryStore):
    async def load(self, session_id: str) -> Any:
        await trio.sleep(1)
        raise OSError("store down")


async def test_kill_returns_when_the_actor_gives_up_while_loading(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FailingLoad()
    async with store, running(store, None) as sup:
        reply: Reply[ActResult] = Reply()
        await sup.deliver("s", Act(None, user_message("x"), reply))  # spawns it LOADING
        with trio.fail_after(120):
            assert await sup.kill("s") is True
        assert sup.info("s") is None
        with pytest.raises(ActorError):
            await reply.get()


class FailingSnapshot(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    async def save_snapshot(self, session_id: str, snapshot: Any, event_id: int) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("snapshot failed")
        await super().save_snapshot(session_id, snapshot, event_id)


async def test_shutdown_does_not_wait_for_an_actor_that_crashed_while_passivating(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = FailingSnapshot()
    async with store, running(store, None) as sup:
        conn = await join(sup, "s", "c0")
        await settle()
        store.failures = 1
        started = trio.current_time()
        assert await sup.shutdown(30) == 0
        assert trio.current_time() - started < 5
        assert conn.closed is not None
