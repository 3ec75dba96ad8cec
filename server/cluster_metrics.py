"""Prometheus metrics of cluster mode: leases held, takeovers, routed actions, fenced refusals, Redis latency.

Owns: ``ClusterCollector``, registered in the server's ``Metrics.registry`` when the store is Redis. Reads
``counters()`` of the node at scrape time (nothing per event). Knows nothing of Redis or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["ClusterCollector"]

PREFIX = "supervisor_cluster"

_GAUGES = {
    "leases_held": "Session leases this node holds.",
    "tailed_sessions": "Sessions owned by other nodes whose logs this node tails for its connections.",
    "redis_latency_seconds": "Round trip of the last Redis PING (-1: none answered yet).",
}
_COUNTERS = {
    "takeovers": "Leases acquired after another holder had them (crash, pause, hand-over).",
    "routed_actions": "User actions routed to a session's owner through its inbox.",
    "inbox_handed_over": "Routed actions this node, as owner, handed to its sessions.",
    "fenced_refusals": "Writes refused by the fence (this node had lost the lease).",
    "idle_polls": "Batched idle polls: one XREAD per interval for up to 1000 of the node's idle Streams.",
    "user_cap_requests": "Passivations this node asked another node for (a user over their cap).",
    "kept_awake": "Idle deadlines of sessions held here deferred: another node served their connections.",
}


class ClusterCollector:
    def __init__(self, counters: Callable[[], Mapping[str, float]]) -> None:
        self.counters = counters

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        values = self.counters()
        for name, help_text in _GAUGES.items():
            yield GaugeMetricFamily(f"{PREFIX}_{name}", help_text, value=float(values.get(name, 0)))
        for name, help_text in _COUNTERS.items():
            yield CounterMetricFamily(f"{PREFIX}_{name}", help_text, value=float(values.get(name, 0)))
