"""Prometheus metrics of one server, in its own ``CollectorRegistry`` (never the process-global one).

Owns: ``Metrics``: the counters fed by the supervisor's ``on_event(kind, n, labels)`` hook (O(1) per event:
one dict lookup and one increment), the latency histograms fed by ``observe(kind, seconds, labels)``, the
gauges computed at scrape time by a custom collector (sessions by state, connections, mailbox depth, turns
running, uptime), the Socket.IO and Engine.IO counts (``SocketIOCounters``, an ``Instrumentation`` the
application registers with ``sio.add_instrumentation(metrics.socketio)``: plain integer increments on the
hot path, turned into metrics at scrape time), and ``render`` (the exposition format, negotiated from
``Accept`` by prometheus_client; never written by hand). Knows nothing of HTTP routing or the admin token
(``server.operator_api`` serves it), and reaches the live system only through the callables given to ``watch``
and the instrumentation hooks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

from actors.lifecycle import ActorState
from actors.supervisor import SessionInfo
from server.socketio.instrument import EventCounts, Handshake, Instrumentation

log = structlog.get_logger(__name__)

PREFIX = "supervisor"

# kind (as counted by the supervisor and its actors) -> (metric name, help, label names)
COUNTERS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "events": ("events", "Events appended to session logs (user actions and agent events).", ()),
    "passivations": (
        "passivations",
        "Sessions passivated (snapshot saved, task ended), by reason: idle, evicted, operator, shutdown, "
        "user_cap.",
        ("reason",),
    ),
    "passivations_aborted": ("passivations_aborted", "Idle passivations aborted by a message arriving.", ()),
    "rehydrations": (
        "rehydrations",
        "Sessions loaded from the store into a live actor (new, rehydrated or restarted), by reason when "
        "the supervisor gives one.",
        ("reason",),
    ),
    "stops": ("stops", "Sessions stopped without a snapshot (killed), by reason.", ("reason",)),
    "crashes": ("crashes", "Actor crashes (the agent or the store raised).", ()),
    "restarts": ("restarts", "Crashed actors restarted from the store.", ()),
    "failures": ("failures", "Actors marked FAILED after exhausting their restart budget.", ()),
    "evictions": ("evictions", "Live sessions evicted to make room, by reason.", ("reason",)),
    "refused": ("refused", "Sessions refused, by reason.", ("reason",)),
    "mailbox_full": ("mailbox_full", "Messages refused because a session's mailbox was full.", ()),
    "turns_timed_out": ("turns_timed_out", "Agent turns stopped by the watchdog.", ()),
    "runtimes_started": ("runtimes_started", "Agent runtimes (shell, exec agent processes) started.", ()),
    "runtimes_stopped": ("runtimes_stopped", "Agent runtimes ended (any reason).", ()),
}

REHYDRATE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RUNTIME_START_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TURN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

UNLABELLED = "unknown"  # label value when the hook gave none (Prometheus treats "" as "no label")

STORED_COUNT_TTL = 10.0  # seconds a store count is reused between scrapes (a COUNT(*) is O(sessions))


@dataclass(slots=True)
class LiveSource:
    """What the scrape-time collector reads. Plain callables: the metrics need not know the server."""

    sessions: Callable[[], Iterable[SessionInfo]]
    state_counts: Callable[[], Mapping[str, int]]
    connections: Callable[[], int]
    started_at: float


class _Counter:
    __slots__ = ("counter", "labelnames")

    def __init__(self, counter: Counter, labelnames: tuple[str, ...]) -> None:
        self.counter = counter
        self.labelnames = labelnames

    def inc(self, n: int, labels: Mapping[str, str]) -> None:
        if not self.labelnames:
            self.counter.inc(n)
        else:
            values = [labels.get(name) or UNLABELLED for name in self.labelnames]
            self.counter.labels(*values).inc(n)


class SocketIOCounters(Instrumentation):
    """Socket.IO and Engine.IO counts from the server's instrumentation hooks (an int increment each), and
    its event counts read at scrape time from the server's own counters (no per-event hook)."""

    def __init__(self) -> None:
        self.connects = 0
        self.disconnects: dict[str, int] = {}  # by reason (a small fixed set of strings)
        self._events: EventCounts | None = None
        self.engine_opened: dict[str, int] = {}  # by transport
        self.engine_closed: dict[str, int] = {}  # by reason
        self.upgrades = 0

    def socket_connected(self, sid: str, namespace: str, handshake: Handshake) -> None:
        self.connects += 1

    def socket_disconnected(self, sid: str, namespace: str, reason: str) -> None:
        self.disconnects[reason] = self.disconnects.get(reason, 0) + 1

    def attached(self, counts: EventCounts) -> None:
        self._events = counts

    @property
    def events_received(self) -> int:
        return self._events.events_received if self._events is not None else 0

    @property
    def events_sent(self) -> int:
        return self._events.events_sent if self._events is not None else 0

    def engine_connected(self, eio_sid: str, transport: str) -> None:
        self.engine_opened[transport] = self.engine_opened.get(transport, 0) + 1

    def engine_disconnected(self, eio_sid: str, reason: str) -> None:
        self.engine_closed[reason] = self.engine_closed.get(reason, 0) + 1

    def transport_upgraded(self, eio_sid: str, transport: str) -> None:
        self.upgrades += 1

    def collect(self) -> Iterable[Metric]:
        """The counts as metrics (a collector of the registry calls this at scrape time)."""
        disconnected = sum(self.disconnects.values())
        yield _counter("socketio_connects", "Socket.IO namespace connections accepted.", self.connects)
        yield _counter(
            "socketio_disconnects", "Socket.IO namespace connections ended, by reason.",
            labelled=("reason", self.disconnects),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_socketio_connected", "Socket.IO namespace connections open now.",
            value=self.connects - disconnected,
        )
        yield _counter("socketio_events_received", "Socket.IO events received from clients.",
                       self.events_received)
        yield _counter("socketio_events_sent", "Socket.IO events emitted (once per emit call or sid).",
                       self.events_sent)
        opened = sum(self.engine_opened.values())
        yield _counter(
            "engineio_connections", "Engine.IO connections opened, by first transport.",
            labelled=("transport", self.engine_opened),
        )
        yield _counter(
            "engineio_disconnections", "Engine.IO connections closed, by reason.",
            labelled=("reason", self.engine_closed),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_engineio_open", "Engine.IO connections open now.",
            value=opened - sum(self.engine_closed.values()),
        )
        yield _counter("engineio_upgrades", "Engine.IO connections upgraded from polling to websocket.",
                       self.upgrades)


def _counter(
    name: str, help_text: str, value: int = 0, labelled: tuple[str, Mapping[str, int]] | None = None
) -> Metric:
    if labelled is None:
        return CounterMetricFamily(f"{PREFIX}_{name}", help_text, value=value)
    label, counts = labelled
    family = CounterMetricFamily(f"{PREFIX}_{name}", help_text, labels=[label])
    for key, n in sorted(counts.items()):
        family.add_metric([key or UNLABELLED], n)
    return family


class _SocketIOCollector:
    def __init__(self, counters: SocketIOCounters) -> None:
        self.counters = counters

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        return self.counters.collect()


class Metrics:
    """``metrics.on_event`` goes to ``Supervisor(on_event=...)``; ``watch`` binds the live gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._counters: dict[str, _Counter] = {}
        for kind, (name, help_text, labelnames) in COUNTERS.items():
            counter = Counter(f"{PREFIX}_{name}", help_text, labelnames, registry=self.registry)
            self._counters[kind] = _Counter(counter, labelnames)
        self._other = _Counter(
            Counter(f"{PREFIX}_other_events", "Supervisor counters without a dedicated metric, by kind.",
                    ("kind",), registry=self.registry),
            ("kind",),
        )
        self.rehydrate_seconds = Histogram(
            f"{PREFIX}_rehydrate_seconds",
            "Time to load a session from the store and start its agent.",
            buckets=REHYDRATE_BUCKETS,
            registry=self.registry,
        )
        self.turn_seconds = Histogram(
            f"{PREFIX}_turn_seconds",
            "Duration of one agent turn (handling one user event).",
            buckets=TURN_BUCKETS,
            registry=self.registry,
        )
        self.runtime_start_seconds = Histogram(
            f"{PREFIX}_runtime_start_seconds",
            "Time to start a session's agent runtime (its lifespan entered: shell or agent process ready).",
            buckets=RUNTIME_START_BUCKETS,
            registry=self.registry,
        )
        self._histograms: dict[str, Histogram] = {
            "rehydrate_seconds": self.rehydrate_seconds,
            "turn_seconds": self.turn_seconds,
            "runtime_start_seconds": self.runtime_start_seconds,
        }
        self._live = _LiveCollector()
        self.registry.register(self._live)
        #: Register with ``sio.add_instrumentation(metrics.socketio)``.
        self.socketio = SocketIOCounters()
        self.registry.register(_SocketIOCollector(self.socketio))
        ProcessCollector(registry=self.registry)

    # ---- hooks (called on the hot path: O(1), never raise) -------------------------------------------

    def on_event(self, kind: str, n: int, labels: Mapping[str, str]) -> None:
        """The supervisor's ``on_event`` hook: one counter increment."""
        counter = self._counters.get(kind)
        if counter is None:
            self._other.inc(n, {"kind": kind})
        else:
            counter.inc(n, labels)

    def observe(self, kind: str, seconds: float, labels: Mapping[str, str] | None = None) -> None:
        """A duration: ``rehydrate_seconds``, ``turn_seconds``, ``runtime_start_seconds`` (others ignored)."""
        histogram = self._histograms.get(kind)
        if histogram is not None:
            histogram.observe(seconds)

    # ---- scrape-time gauges --------------------------------------------------------------------------

    def watch(self, source: LiveSource) -> None:
        self._live.source = source

    async def refresh_stored_count(self, count: Callable[[], Awaitable[int]]) -> None:
        """Refresh the number of stored sessions (for ``state="passivated"``) at most every TTL seconds."""
        live = self._live
        now = time.monotonic()
        if live.stored is not None and now - live.stored_at < STORED_COUNT_TTL:
            return
        try:
            live.stored = await count()
            live.stored_at = now
        except Exception:
            log.exception("metrics.store_count_failed")

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (Prometheus text, or OpenMetrics if ``accept`` asks for it) and its content type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class _LiveCollector:
    """Gauges read from the live system when scraped (O(live sessions) per scrape, nothing per event)."""

    def __init__(self) -> None:
        self.source: LiveSource | None = None
        self.stored: int | None = None
        self.stored_at = 0.0

    def describe(self) -> Iterable[Metric]:
        return []  # names are fixed below; no need to collect at registration time

    def collect(self) -> Iterable[Metric]:
        source = self.source
        if source is None:
            return
        sessions = GaugeMetricFamily(
            f"{PREFIX}_sessions",
            "Sessions by lifecycle state (passivated: stored sessions that are not live).",
            labels=["state"],
        )
        counts = source.state_counts()
        live_total = 0
        for state in ActorState:
            if state is ActorState.PASSIVATED:
                continue
            n = counts.get(state.value, 0)
            live_total += n
            sessions.add_metric([state.value], n)
        if self.stored is not None:
            sessions.add_metric([ActorState.PASSIVATED.value], max(0, self.stored - live_total))
        yield sessions
        yield GaugeMetricFamily(f"{PREFIX}_live_sessions", "Sessions with a live actor.", value=live_total)
        yield GaugeMetricFamily(
            f"{PREFIX}_connections", "Socket.IO connections joined to a session.", value=source.connections()
        )
        depth_total = depth_max = turns = runtimes = 0
        for info in source.sessions():
            depth_total += info.mailbox_depth
            depth_max = max(depth_max, info.mailbox_depth)
            turns += info.turn_running
            runtimes += info.runtime is not None
        yield GaugeMetricFamily(
            f"{PREFIX}_mailbox_depth", "Messages waiting in all live sessions' mailboxes.", value=depth_total
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_mailbox_depth_max", "The deepest live session mailbox.", value=depth_max
        )
        yield GaugeMetricFamily(f"{PREFIX}_turns_running", "Agent turns in flight.", value=turns)
        yield GaugeMetricFamily(
            f"{PREFIX}_runtime_processes_alive", "Live sessions whose agent runtime process is running.",
            value=runtimes,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_uptime_seconds", "Seconds since the server started.",
            value=max(0.0, time.time() - source.started_at),
        )
