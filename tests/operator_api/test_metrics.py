"""server.metrics: counters from the supervisor's hook, histograms, scrape-time gauges, own registry."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from actors.supervisor import SessionInfo
from server.metrics import LiveSource, Metrics


def scrape(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def info(session_id: str, depth: int, turn: bool = False) -> SessionInfo:
    return SessionInfo(session_id, "active", None, 1, depth, 0.0, 3, 2, 0, turn, None)


def test_hook_counts_by_kind_and_reason() -> None:
    metrics = Metrics()
    metrics.on_event("events", 3, {})
    metrics.on_event("events", 2, {})
    metrics.on_event("passivations", 1, {"reason": "idle"})
    metrics.on_event("passivations", 1, {"reason": "operator"})
    metrics.on_event("passivations", 1, {"reason": "idle"})
    metrics.on_event("rehydrations", 1, {})
    metrics.on_event("something_new", 4, {})
    samples = scrape(metrics)
    assert samples[("supervisor_events_total", ())] == 5
    assert samples[("supervisor_passivations_total", (("reason", "idle"),))] == 2
    assert samples[("supervisor_passivations_total", (("reason", "operator"),))] == 1
    assert samples[("supervisor_rehydrations_total", (("reason", "unknown"),))] == 1
    assert samples[("supervisor_other_events_total", (("kind", "something_new"),))] == 4


def test_durations_go_to_their_histograms() -> None:
    metrics = Metrics()
    metrics.observe("rehydrate_seconds", 0.003, {})
    metrics.observe("turn_seconds", 2.0, {})
    metrics.observe("turn_seconds", 20.0, {})
    metrics.observe("unknown_seconds", 1.0)
    samples = scrape(metrics)
    assert samples[("supervisor_rehydrate_seconds_count", ())] == 1
    assert samples[("supervisor_rehydrate_seconds_bucket", (("le", "0.005"),))] == 1
    assert samples[("supervisor_turn_seconds_count", ())] == 2
    assert samples[("supervisor_turn_seconds_bucket", (("le", "5.0"),))] == 1


async def test_gauges_are_read_from_the_live_source_at_scrape_time() -> None:
    metrics = Metrics()
    live: list[SessionInfo] = [info("a", 2), info("b", 5, turn=True)]
    counts: dict[str, Any] = {"active": 2, "idle": 1}
    metrics.watch(LiveSource(lambda: live, lambda: counts, lambda: 7, started_at=0.0))

    async def stored() -> int:
        return 10

    await metrics.refresh_stored_count(stored)
    samples = scrape(metrics)
    assert samples[("supervisor_sessions", (("state", "active"),))] == 2
    assert samples[("supervisor_sessions", (("state", "idle"),))] == 1
    assert samples[("supervisor_sessions", (("state", "passivated"),))] == 7
    assert samples[("supervisor_live_sessions", ())] == 3
    assert samples[("supervisor_connections", ())] == 7
    assert samples[("supervisor_mailbox_depth", ())] == 7
    assert samples[("supervisor_mailbox_depth_max", ())] == 5
    assert samples[("supervisor_turns_running", ())] == 1
    live.clear()
    assert scrape(metrics)[("supervisor_mailbox_depth", ())] == 0


def test_each_instance_has_its_own_registry() -> None:
    one, two = Metrics(), Metrics()
    one.on_event("events", 1, {})
    assert scrape(two)[("supervisor_events_total", ())] == 0
    assert REGISTRY.get_sample_value("supervisor_events_total") is None


def test_openmetrics_is_served_when_asked_for() -> None:
    body, content_type = Metrics().render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
