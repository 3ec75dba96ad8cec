"""Stored events: the JSON text built from the gateway's encoding is exactly the canonical encoding."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.events import StoredEvent, canonical_json
from actors.messages import Act, ActResult
from actors.reply import Reply
from actors.stores.memory import MemoryStore
from tests.actors.conftest import running

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


def canonical(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@given(st.dictionaries(st.text().filter(lambda k: k != "id"), json_values, max_size=6), st.integers(0, 2**40))
def test_prefix_built_event_equals_a_fresh_encoding(payload: dict[str, Any], event_id: int) -> None:
    prefix = canonical_json(payload)[:-1]
    built = StoredEvent.create(event_id, payload, prefix)
    fresh = StoredEvent.create(event_id, payload)
    assert built.json_text == fresh.json_text == canonical({**payload, "id": event_id})
    assert json.loads(built.json_text) == built.payload == {**payload, "id": event_id}


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_json_is_compact_unescaped_json(payload: dict[str, Any]) -> None:
    assert canonical_json(payload) == canonical(payload)


@pytest.mark.parametrize(
    "action",
    [
        {"action": "message", "args": {"content": "héllo \u2028 \"q\""}},
        {"action": "run", "args": {"command": "ls"}, "message": "given"},
        {"action": "message", "args": {"content": ["not", "a", "string"]}, "extra": None},
        {"action": "message", "source": "spoofed", "args": {}},
    ],
)
async def test_actions_are_stored_with_their_canonical_encoding(
    store: MemoryStore, action: dict[str, Any]
) -> None:
    async with running(store) as sup:
        reply: Reply[ActResult] = Reply()
        await sup.deliver("s1", Act(None, action, reply, action_json=canonical_json(action)))
        result = await reply.get()
        (stored,) = await store.events_after("s1", result.event_id - 1, 1)
    assert stored.json_text == canonical(stored.payload)
    assert stored.payload["source"] == "user" and stored.payload["id"] == result.event_id
    assert {k: v for k, v in stored.payload.items() if k not in ("id", "source", "timestamp", "message")} == {
        k: v for k, v in action.items() if k not in ("source", "message")
    }


def test_utc_timestamp_has_the_layout_of_isoformat_and_is_now() -> None:
    import re
    from datetime import UTC, datetime

    from actors.events import utc_timestamp

    before = datetime.now(UTC)
    stamp = utc_timestamp()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00", stamp)
    parsed = datetime.fromisoformat(stamp)
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= parsed <= after
    assert parsed.isoformat() == stamp  # byte for byte what datetime writes for the same instant
    assert json.loads(f'"{stamp}"') == stamp == json.loads(json.dumps(stamp))


def test_utc_timestamp_on_a_whole_second_has_no_fraction_as_isoformat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time
    from datetime import UTC, datetime

    from actors import events

    for instant in (1_800_000_000.0, 1_800_000_000.5, 1_800_000_001.000001, 1_799_999_999.9999996):
        monkeypatch.setattr(time, "time", lambda instant=instant: instant)
        expected = datetime.fromtimestamp(instant, UTC).isoformat()
        assert events.utc_timestamp() == expected
