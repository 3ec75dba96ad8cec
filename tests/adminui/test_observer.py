"""AdminObserver: the instrumentation hooks turned into what the Admin UI reads (called directly, as the
server's hooks will call them)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from server.adminui.observer import AdminObserver, iso

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass
class Handshake:
    eio_sid: str = "eio1"
    address: str = "127.0.0.1"
    headers: Any = None
    query: str = "EIO=4&transport=polling&conversation_id=s1"
    url: str = "/socket.io/?EIO=4&transport=polling"
    auth: Any = None
    time: float = 1_700_000_000.5


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.25

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sent() -> list[tuple[str, tuple[Any, ...]]]:
    return []


@pytest.fixture
def obs(sent: list[tuple[str, tuple[Any, ...]]]) -> AdminObserver:
    observer = AdminObserver(sink=lambda e, a: sent.append((e, a)), clock=Clock())
    observer.watching = True
    return observer


def connect(obs: AdminObserver, sid: str = "a", nsp: str = "/", eio: str = "eio1") -> None:
    obs.engine_connected(eio, "polling")
    headers = {"HTTP_USER_AGENT": "test", "HTTP_HOST": "h"}
    obs.socket_connected(sid, nsp, Handshake(eio_sid=eio, headers=headers))


def test_iso_timestamps_like_node() -> None:
    assert iso(1_700_000_000.5) == "2023-11-14T22:13:20.500Z"


def test_a_connected_socket_has_every_field_the_ui_needs(obs: AdminObserver, sent: list[Any]) -> None:
    connect(obs)
    ((event, (socket, ts)),) = sent
    assert event == "socket_connected"
    assert ISO.match(ts)
    assert socket["id"] == "a" and socket["clientId"] == "eio1" and socket["nsp"] == "/"
    assert socket["transport"] == "polling"
    assert socket["rooms"] == ["a"]
    hs = socket["handshake"]
    assert hs["headers"] == {"user-agent": "test", "host": "h"}
    assert hs["query"]["conversation_id"] == "s1"
    assert hs["issued"] == 1_700_000_000_500
    assert isinstance(hs["time"], str) and hs["address"] == "127.0.0.1"
    assert obs.all_sockets() == [socket]


def test_rooms_upgrade_data_and_disconnect(obs: AdminObserver, sent: list[Any]) -> None:
    connect(obs)
    sent.clear()
    obs.room_joined("a", "/", "lobby")
    obs.transport_upgraded("eio1", "websocket")
    obs.set_data("a", {"sessionId": "s1", "state": "active"})
    obs.set_data("a", {"sessionId": "s1", "state": "active"})  # unchanged: nothing sent
    obs.room_left("a", "/", "lobby")
    obs.socket_disconnected("a", "/", "client namespace disconnect")
    obs.engine_disconnected("eio1", "transport close")
    names = [e for e, _ in sent]
    assert names == ["room_joined", "socket_updated", "socket_updated", "room_left", "socket_disconnected"]
    assert sent[0][1][:3] == ("/", "lobby", "a")
    assert sent[1][1] == ({"id": "a", "nsp": "/", "transport": "websocket"},)
    assert sent[2][1] == ({"id": "a", "nsp": "/", "data": {"sessionId": "s1", "state": "active"}},)
    assert sent[4][1][:3] == ("/", "a", "client namespace disconnect")
    assert obs.all_sockets() == [] and obs.clients_count == 0


def test_events_received_and_sent_per_recipient_with_timestamps(obs: AdminObserver, sent: list[Any]) -> None:
    connect(obs, "a", eio="e1")
    connect(obs, "b", eio="e2")
    obs.room_joined("a", "/", "chat")
    obs.room_joined("b", "/", "chat")
    sent.clear()
    obs.event_received("a", "/", "message", ["hi", lambda: None])
    obs.event_sent("chat", "/", "message", ("hi", 2))
    obs.event_sent("a", "/", "solo", {"x": 1})
    obs.event_sent(None, "/", "all", [1, 2])
    assert sent[0] == ("event_received", ("/", "a", ["message", "hi"], sent[0][1][3]))
    assert ISO.match(sent[0][1][3])
    to_chat = [a for e, a in sent if e == "event_sent" and a[2][0] == "message"]
    assert sorted(a[1] for a in to_chat) == ["a", "b"]
    assert to_chat[0][2] == ["message", "hi", 2]
    assert [a[2] for e, a in sent if a[2][0] == "solo"] == [["solo", {"x": 1}]]
    assert [a[2] for e, a in sent if a[2][0] == "all"] == [["all", [1, 2]]] * 2


def test_the_admin_namespace_own_traffic_is_not_a_user_event(obs: AdminObserver, sent: list[Any]) -> None:
    connect(obs, "adm", nsp="/admin")
    sent.clear()
    obs.event_received("adm", "/admin", "_disconnect", ["/", False, "x"])
    obs.event_sent("__admin_ui", "/admin", "server_stats", ({},))
    assert sent == []
    assert obs.namespaces() == [{"name": "/admin", "socketsCount": 1}]  # the UI lists it, as Node does


def test_production_mode_and_no_admins_forward_nothing_but_still_count(sent: list[Any]) -> None:
    for development, watching in ((False, True), (True, False)):
        obs = AdminObserver(sink=lambda e, a: sent.append((e, a)), development=development, clock=Clock())
        obs.watching = watching
        connect(obs)
        obs.event_received("a", "/", "x", [])
        assert sent == []
        types = {item["type"] for item in obs.drain_aggregated()}
        assert types == {"rawConnection", "packetsIn"}


def test_aggregated_events_are_deltas_per_second(obs: AdminObserver) -> None:
    clock = Clock()
    obs = AdminObserver(clock=clock)
    obs.engine_connected("e1", "websocket")
    obs.engine_connected("e2", "polling")
    clock.now += 1
    obs.engine_disconnected("e1", "transport close")
    drained = obs.drain_aggregated()
    assert drained == [
        {"timestamp": 1_700_000_000_000, "type": "rawConnection", "count": 2},
        {"timestamp": 1_700_000_001_000, "type": "rawDisconnection", "subType": "transport close",
         "count": 1},
    ]
    assert obs.drain_aggregated() == []
    assert (obs.clients_count, obs.polling_clients_count) == (1, 1)


def test_forwarding_is_bounded_per_second_and_per_broadcast(sent: list[Any]) -> None:
    clock = Clock()
    obs = AdminObserver(sink=lambda e, a: sent.append((e, a)), clock=clock, event_budget=5, max_recipients=3)
    for i in range(10):
        obs.engine_connected(f"e{i}", "websocket")
    obs.watching = True
    for i in range(10):
        obs.socket_connected(f"s{i}", "/", Handshake(eio_sid=f"e{i}"))
    assert len(sent) == 5 and obs.dropped == 5
    clock.now += 1
    sent.clear()
    obs.event_sent(None, "/", "all", "x")  # 10 recipients, 3 reported
    assert len(sent) == 3


async def test_stats_loop_drains_the_buffer_when_no_admin_watches(autojump_clock: Any) -> None:
    import trio

    from server.adminui import AdminNamespace, AdminUiConfig

    ns = AdminNamespace(AdminUiConfig(enabled=True), token="t", clock=trio.current_time)
    async with trio.open_nursery() as nursery:
        await nursery.start(ns.run)
        ns.observer.engine_connected("e1", "websocket")
        await trio.sleep(2.5)
        assert ns.observer.drain_aggregated() == []  # drained by the loop: bounded with nobody watching
        stats = ns.server_stats()
        assert stats["clientsCount"] == 1 and stats["pollingClientsCount"] == 0
        nursery.cancel_scope.cancel()


def test_a_data_update_dropped_for_the_budget_is_sent_at_the_next_refresh(sent: list[Any]) -> None:
    clock = Clock()
    obs = AdminObserver(sink=lambda e, a: sent.append((e, a)), clock=clock, event_budget=1)
    obs.watching = True
    obs.socket_connected("s1", "/", Handshake(eio_sid="e1"))  # the second's one notice
    obs.set_data("s1", {"sessionId": "a", "state": "active"})
    assert [e for e, _ in sent] == ["socket_connected"] and obs.dropped == 1
    clock.now += 1
    obs.set_data("s1", {"sessionId": "a", "state": "active"})  # unchanged, but never told: told now
    data = {"sessionId": "a", "state": "active"}
    assert sent[-1] == ("socket_updated", ({"id": "s1", "nsp": "/", "data": data},))
    obs.set_data("s1", {"sessionId": "a", "state": "active"})
    assert len(sent) == 2  # told once, not again
