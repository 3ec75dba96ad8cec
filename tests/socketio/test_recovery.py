"""``server.socketio.recovery.RecoveryStore``: which packets a restore replays, and the bounds."""

from __future__ import annotations

import json
from typing import Any

import pytest

from server.socketio import Server
from server.socketio.recovery import RecoveryConfig, RecoveryStore, room_set
from tests.socketio.fakes import FakeSocket, running


def emit(store: RecoveryStore, name: str, now: float, to: object = None, skip: object = None,
         namespace: str = "/") -> str:
    offset = store.next_offset()
    message = f"2[{name!r},{offset!r}]"
    store.record(namespace, room_set(to), room_set(skip), [message], now)  # type: ignore[arg-type]
    return offset


def test_restore_replays_what_the_sid_would_have_received_once_in_order() -> None:
    store = RecoveryStore(RecoveryConfig())
    last = emit(store, "seen", 0, to="sid1")
    store.persist("pid1", "sid1", "/", ["sid1", "r"], {"k": 1}, 1)
    emit(store, "a", 2, to="r")
    emit(store, "b", 2)  # the whole namespace
    emit(store, "other", 2, to="elsewhere")
    emit(store, "skipped", 2, to="r", skip="r")
    emit(store, "other-nsp", 2, namespace="/chat")
    emit(store, "c", 3, to=["x", "sid1"])
    restored = store.restore("/", "pid1", last, 4)
    assert restored is not None
    assert (restored.sid, restored.rooms, restored.data) == ("sid1", ("sid1", "r"), {"k": 1})
    assert [m.split("'")[1] for m in restored.missed] == ["a", "b", "c"]
    assert store.restore("/", "pid1", last, 4) is None  # restored once only


def test_no_restore_past_the_duration_or_for_unknown_offsets() -> None:
    store = RecoveryStore(RecoveryConfig(max_disconnection_duration=10))
    last = emit(store, "seen", 0)
    store.persist("pid1", "sid1", "/", ["sid1"], None, 0)
    store.persist("pid2", "sid2", "/", ["sid2"], None, 0)
    assert store.restore("/", "pid1", last, 10.5) is None  # expired
    assert store.sessions == 0
    other = RecoveryStore(RecoveryConfig())
    foreign = emit(other, "x", 0)
    store.persist("pid3", "sid3", "/", ["sid3"], None, 11)
    assert store.restore("/", "pid3", foreign, 11) is None  # another server's offset
    store.persist("pid3", "sid3", "/", ["sid3"], None, 11)
    assert store.restore("/chat", "pid3", emit(store, "y", 11), 11) is None  # another namespace
    assert store.restore("/", None, last, 11) is None


def test_bounds_log_sessions_and_missed_packets() -> None:
    store = RecoveryStore(RecoveryConfig(max_packets=3, max_sessions=2, max_missed_packets=2))
    first = emit(store, "0", 0)
    store.persist("pid1", "s1", "/", ["s1"], None, 0)
    for name in "123":
        emit(store, name, 0)
    assert len(store) == 3
    assert store.restore("/", "pid1", first, 0) is None  # its offset fell out of the log
    for i in range(3):
        store.persist(f"p{i}", f"s{i}", "/", [f"s{i}"], None, 0)
    assert store.sessions == 2
    newest = store.next_offset()
    emit(store, "4", 0)
    store.persist("p9", "s9", "/", ["s9"], None, 0)
    assert store.restore("/", "p9", newest, 0) is not None  # nothing missed
    wide = RecoveryStore(RecoveryConfig(max_missed_packets=2))
    mid = emit(wide, "5", 0)
    wide.persist("p8", "s8", "/", ["s8"], None, 0)
    wide.persist("p7", "s7", "/", ["s7"], None, 0)
    emit(wide, "6", 0)
    emit(wide, "7", 0)
    assert wide.restore("/", "p7", mid, 0) is not None  # 2 missed: at the bound
    emit(wide, "8", 0)
    assert wide.restore("/", "p8", mid, 0) is None  # would replay 3 > max_missed_packets


@pytest.mark.parametrize("value", [None, False])
def test_off_by_default(value: object) -> None:
    assert RecoveryConfig.of(value) is None  # type: ignore[arg-type]
    assert RecoveryConfig.of(True) == RecoveryConfig()
    five = RecoveryConfig(max_disconnection_duration=5)
    assert RecoveryConfig.of({"max_disconnection_duration": 5}) == five


async def _cut_and_reconnect(skip_middlewares: bool, refuse: bool) -> tuple[str, str, list[str | bytes]]:
    """Connect, get an event, lose the transport, miss an event, reconnect with {pid, offset}."""
    sio = Server(connection_state_recovery={"skip_middlewares": skip_middlewares})
    order: list[str] = []

    @sio.on("connect")
    async def connect(sid: str, environ: dict[str, Any], auth: Any) -> bool:
        order.append(f"handler recovered={sio.recovered(sid)}")
        return not (refuse and sio.recovered(sid))

    async with running(sio):
        first = FakeSocket("eio-1")
        await sio.engine_connect(first)
        await sio.engine_message(first, "0")
        reply = json.loads(str(first.sent[0])[1:])
        sio.emit_nowait("seen", 1, to=reply["sid"])
        offset = json.loads(str(first.sent[1])[1:])[-1]
        await sio.engine_disconnect(first, "transport close")
        sio.emit_nowait("missed", 2)
        second = FakeSocket("eio-2")
        await sio.engine_connect(second)
        await sio.engine_message(second, "0" + json.dumps({"pid": reply["pid"], "offset": offset}))
        again = json.loads(str(second.sent[0])[1:]) if str(second.sent[0]).startswith("0") else {}
        return reply["sid"], again.get("sid", ""), second.sent


async def test_recovered_sid_skipping_middlewares_is_connected_before_its_handler_runs() -> None:
    sid, again, sent = await _cut_and_reconnect(skip_middlewares=True, refuse=True)
    assert again == sid
    assert sent[1].startswith('2["missed",2,')  # type: ignore[union-attr]
    assert str(sent[2]).startswith("1")  # the handler's refusal, after the reply: a DISCONNECT


async def test_recovered_sid_without_skipping_middlewares_can_be_refused_before_the_reply() -> None:
    sid, again, sent = await _cut_and_reconnect(skip_middlewares=False, refuse=True)
    assert again == ""
    assert len(sent) == 1 and str(sent[0]).startswith("4")  # CONNECT_ERROR, nothing replayed
    sid, again, sent = await _cut_and_reconnect(skip_middlewares=False, refuse=False)
    assert again == sid and sent[1].startswith('2["missed",2,')  # type: ignore[union-attr]
