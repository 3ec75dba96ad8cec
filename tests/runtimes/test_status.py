"""The runtime status updates and agent_state_changed observations, in OpenHands' shapes."""

from __future__ import annotations

import pytest

from actors.runtimes import (
    AgentState,
    agent_state_changed,
    runtime_started_status,
    starting_runtime_status,
)


def test_runtime_statuses_are_info_status_updates() -> None:
    assert starting_runtime_status().payload == {
        "status_update": True, "type": "info", "id": "STATUS$STARTING_RUNTIME",
        "message": "Starting runtime...",
    }
    started = runtime_started_status()
    assert started.payload["id"] == "STATUS$RUNTIME_STARTED"
    assert started.event_id is None  # broadcast, never stored


@pytest.mark.parametrize("state", ["loading", "awaiting_user_input", "running", "stopped", "error"])
def test_agent_state_changed_observation(state: str) -> None:
    payload = agent_state_changed(state, reason="why")
    assert payload == {
        "observation": "agent_state_changed",
        "source": "agent",
        "message": f"Agent state changed to {state}",
        "content": "",
        "extras": {"agent_state": state, "reason": "why"},
    }
    plain = agent_state_changed(AgentState(state))
    assert plain == {**payload, "extras": {"agent_state": state, "reason": ""}}


def test_unknown_agent_state_is_refused() -> None:
    with pytest.raises(ValueError):
        agent_state_changed("sleeping")
