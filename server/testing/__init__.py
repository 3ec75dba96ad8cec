"""The trio test harness: run the Session Supervisor in-process and talk to it like a client would.

Owns: the public testing API re-exported here (``server.testing.harness``: servers and time;
``server.testing.events``: reading ``oh_event`` streams; ``server.testing.clocksafe``: SQLite under a
MockClock). The pytest fixtures live in ``server.testing.plugin``, registered as the ``supervisor`` pytest11
plugin. docs/testing.md shows how to test an Agent with it. Must not be imported by product code.
"""

from server.testing.clocksafe import ClockSafeStore
from server.testing.events import (
    OH_EVENT,
    OH_USER_ACTION,
    collect_oh_events,
    event_ids,
    has_event_id,
    is_status,
    next_oh_event,
    statuses,
    user_message,
)
from server.testing.harness import (
    SupervisorHandle,
    advance_past_close_delay,
    harness_config,
    open_supervisor,
    start_supervisor,
)

__all__ = [
    "OH_EVENT",
    "OH_USER_ACTION",
    "ClockSafeStore",
    "SupervisorHandle",
    "advance_past_close_delay",
    "collect_oh_events",
    "event_ids",
    "harness_config",
    "has_event_id",
    "is_status",
    "next_oh_event",
    "open_supervisor",
    "start_supervisor",
    "statuses",
    "user_message",
]
