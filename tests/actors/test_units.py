"""Sans-IO pieces: the lifecycle table, the mailbox, the reply slot, the restart budget, agent loading."""

from __future__ import annotations

import pytest
import trio

from actors.agent import load_agent_factory
from actors.echo import EchoAgent
from actors.errors import MailboxClosed, MailboxFull
from actors.lifecycle import TRANSITIONS, ActorState, InvalidTransition, Trigger, next_state
from actors.mailbox import Mailbox
from actors.reply import Reply
from actors.restart import RestartBudget, RestartConfig, RestartPolicy

S, T = ActorState, Trigger


@pytest.mark.parametrize(
    ("state", "trigger", "expected"),
    [
        (S.LOADING, T.LOADED_BUSY, S.ACTIVE),
        (S.LOADING, T.LOADED_IDLE, S.IDLE),
        (S.ACTIVE, T.QUIESCED, S.IDLE),
        (S.IDLE, T.WOKEN, S.ACTIVE),
        (S.IDLE, T.PASSIVATE, S.PASSIVATING),
        (S.PASSIVATING, T.ABORT, S.ACTIVE),
        (S.PASSIVATING, T.PERSISTED, S.PASSIVATED),
        (S.ACTIVE, T.CRASH, S.CRASHED),
        (S.IDLE, T.CRASH, S.CRASHED),
        (S.PASSIVATING, T.CRASH, S.CRASHED),
        (S.LOADING, T.CRASH, S.CRASHED),
        (S.CRASHED, T.RESTART, S.LOADING),
        (S.CRASHED, T.GIVE_UP, S.FAILED),
    ],
)
def test_design_table_rows(state: ActorState, trigger: Trigger, expected: ActorState) -> None:
    assert next_state(state, trigger) is expected


def test_every_pair_outside_the_table_is_refused() -> None:
    refused = 0
    for state in ActorState:
        for trigger in Trigger:
            if (state, trigger) in TRANSITIONS:
                continue
            refused += 1
            with pytest.raises(InvalidTransition):
                next_state(state, trigger)
    assert refused > 50
    assert not any(state is S.PASSIVATED for state, _ in TRANSITIONS)  # terminal


async def test_mailbox_is_bounded_and_answers_overflow() -> None:
    box: Mailbox[int] = Mailbox(3)
    for i in range(3):
        box.put(i)
    assert box.depth == 3
    with pytest.raises(MailboxFull):
        box.put(99)
    box.put(100, force=True)  # runtime control messages pass the bound
    assert box.drain(2) == [0, 1]
    assert box.drain() == [2, 100]
    assert box.depth == 0 and box.drain() == []


async def test_mailbox_wait_wakes_on_put_and_close_refuses() -> None:
    box: Mailbox[str] = Mailbox()
    got: list[list[str]] = []

    async def reader() -> None:
        await box.wait()
        got.append(box.drain())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert got == []
        box.put("a")
    assert got == [["a"]]
    box.put("b")
    assert box.close() == ["b"]
    with pytest.raises(MailboxClosed):
        box.put("c", force=True)
    with pytest.raises(ValueError):
        Mailbox(0)


async def test_reply_is_one_shot_and_carries_errors() -> None:
    reply: Reply[int] = Reply()
    assert not reply.done
    with pytest.raises(RuntimeError):
        reply.result()
    assert reply.set(1)
    assert not reply.set(2)
    assert await reply.get() == 1
    failing: Reply[int] = Reply()
    async with trio.open_nursery() as nursery:
        async def waiter() -> None:
            with pytest.raises(KeyError):
                await failing.get()
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        failing.fail(KeyError("x"))


def test_restart_budget_intensity_period_and_backoff() -> None:
    budget = RestartBudget(RestartConfig(intensity=3, period=10, backoff_initial=0.5, backoff_factor=2,
                                         backoff_max=1.5))
    assert budget.on_crash(0.0) == 0.5
    assert budget.on_crash(1.0) == 1.0
    assert budget.on_crash(2.0) == 1.5  # capped
    assert budget.on_crash(3.0) is None  # a 4th crash within 10 s: give up
    fresh = RestartBudget(RestartConfig(intensity=2, period=10, backoff_initial=1, backoff_factor=3))
    assert fresh.on_crash(0.0) == 1
    assert fresh.on_crash(5.0) == 3
    assert fresh.on_crash(10.5) == 3  # the crash at 0 left the window: one in it before this one
    assert fresh.recent == 2


def test_restart_policies() -> None:
    temporary = RestartBudget(RestartConfig(policy=RestartPolicy.TEMPORARY))
    assert temporary.on_crash(0.0) is None
    transient = RestartBudget(RestartConfig(policy=RestartPolicy.TRANSIENT))
    assert transient.on_crash(0.0, normal_exit=True) is None
    assert transient.on_crash(0.0) is not None
    permanent = RestartBudget(RestartConfig(policy=RestartPolicy.PERMANENT))
    assert permanent.on_crash(0.0, normal_exit=True) is not None
    with pytest.raises(ValueError):
        RestartConfig(backoff_factor=0.5)


def test_load_agent_factory() -> None:
    assert load_agent_factory("echo") is EchoAgent
    assert load_agent_factory("none") is None
    assert load_agent_factory("actors.echo:EchoAgent") is EchoAgent
    with pytest.raises(ValueError):
        load_agent_factory("actors.echo")
    with pytest.raises(ModuleNotFoundError):
        load_agent_factory("no_such_module_xyz:Agent")
    with pytest.raises(AttributeError):
        load_agent_factory("actors.echo:Missing")
