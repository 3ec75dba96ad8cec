"""Hypothesis: malformed polling payloads and websocket frames. The bad socket gets the specified error
(400 code 3 / a closed websocket, reason "transport error") and closes; another socket is unaffected."""

from __future__ import annotations

import string

import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.engineio import EngineConfig
from tests.engineio.helpers import Harness, error_body

chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1e")  # UTF-8-encodable
message_text = st.text(chars, max_size=20)
valid_part = st.one_of(message_text.map(lambda t: "4" + t), st.just("3"), st.just("6"))
bad_part = st.one_of(
    st.just(""),
    st.text(chars, min_size=1, max_size=10).filter(lambda t: t[0] not in "0123456b"),
    st.text(alphabet=string.ascii_letters + "=!-", min_size=1, max_size=9)
    .filter(lambda t: "!" in t or "-" in t)
    .map(lambda t: "b" + t),
    st.sampled_from(["bA", "bAB", "bABCDE", "b=", "bA=B="]),  # bad length or padding
)


@st.composite
def malformed_payload(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    before = draw(st.lists(valid_part, max_size=4))
    after = draw(st.lists(valid_part, max_size=3))
    bad = draw(bad_part)
    body = "\x1e".join([*before, bad, *after]).encode()
    return body, [p[1:] for p in before if p.startswith("4")]


async def _check_payload(body: bytes, delivered: list[str]) -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, EngineConfig())
        bad, good = await h.open_polling(), await h.open_polling()
        response = await h.post(bad, body)
        assert response.status == 400, body
        assert error_body(response) == {"code": 3, "message": "Bad request"}
        await trio.testing.wait_all_tasks_blocked()
        assert h.app.of("message", bad) == delivered
        assert h.app.of("disconnect", bad) == ["transport error"]
        assert error_body(await h.get(bad))["code"] == 1
        assert (await h.post(good, "4still fine")).body == b"ok"
        assert (await h.get(good)).body == b"4still fine"
        assert h.app.of("disconnect", good) == []
        nursery.cancel_scope.cancel()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(malformed_payload())
def test_malformed_polling_payload_closes_only_that_socket(case: tuple[bytes, list[str]]) -> None:
    trio.run(_check_payload, *case)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=1).filter(lambda b: not _is_utf8(b)))
def test_non_utf8_polling_payload_is_rejected(body: bytes) -> None:
    trio.run(_check_payload, body, [])


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def _check_frame(frame: str) -> None:
    async with trio.open_nursery() as nursery:
        h = await Harness.start(nursery, EngineConfig())
        bad = await h.websocket("EIO=4&transport=websocket")
        good = await h.websocket("EIO=4&transport=websocket")
        bad.client_send(frame)
        good.client_send("4ok")
        await trio.testing.wait_all_tasks_blocked()
        assert bad.closed
        assert [e[2] for e in h.app.events if e[0] == "disconnect"] == ["transport error"]
        assert good.sent[1:] == ["4ok"] and not good.closed
        nursery.cancel_scope.cancel()


@settings(max_examples=100, deadline=None)
@given(bad_part)
def test_malformed_websocket_frame_closes_only_that_socket(frame: str) -> None:
    trio.run(_check_frame, frame)
