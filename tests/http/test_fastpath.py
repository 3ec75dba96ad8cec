"""The HTTP fast path against h11: the same meaning for every request it accepts, h11 for all others.

Sans-IO properties (bytes in, values out): a plain request is parsed exactly as h11 parses it; whatever
the fast path accepts out of random or mangled bytes, h11 accepts with the same result; whatever it waits
for, h11 waits for too; the unusual requests go to h11. Responses are byte-identical to h11's, and
refused exactly when h11 refuses them. The real-socket tests at the end mix both paths on one connection.
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import parse_qsl

import h11
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.http import Request, Response, open_http_server
from server.http._fastpath import (
    BLOCK_CACHED_UP_TO,
    BLOCK_TABLE_LIMIT,
    FALLBACK,
    NEED_MORE,
    Head,
    cached_blocks,
    encode_response,
    parse_head,
)
from server.http._request import split_target
from server.http.connection import build_request
from tests.http.helpers import RawClient, make_app, request

REMOTE = ("127.0.0.1", 5555)
MAX_HEAD = 16 * 1024

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
TARGET_CHARS = "".join(chr(c) for c in range(0x21, 0x7F))
VALUE_CHARS = [bytes([c]) for c in range(256) if c not in b"\x00\t\n\r\x0b\x0c "]


def h11_parse(data: bytes) -> tuple[Request, bytes] | str:
    """What h11 makes of ``data``: the request and the bytes after it, "need-data", or "error"."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    conn.receive_data(data)
    head: h11.Request | None = None
    body = b""
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                return "need-data"
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert head is not None
                return build_request(head, body, REMOTE), conn.trailing_data[0]
            else:
                return "other"
    except h11.RemoteProtocolError:
        return "error"


def fast_parse(data: bytes) -> tuple[Request, bytes] | str:
    head = parse_head(data, REMOTE)
    if not isinstance(head, Head):
        return head
    end = head.body_start + head.content_length
    if len(data) < end:
        return "short-body"
    head.request.body = data[head.body_start:end]
    return head.request, data[end:]


def fields(request: Request) -> tuple[object, ...]:
    return (request.method, request.target, request.path, request.query, request.headers, request.body,
            request.remote, request.is_websocket_upgrade)


def assert_same_as_h11(data: bytes) -> None:
    """If the fast path takes ``data``, h11 reads the very same request from it."""
    if not data:  # the connection never asks the fast path about nothing
        return
    fast = fast_parse(data)
    if fast == FALLBACK:
        return
    slow = h11_parse(data)
    if fast in (NEED_MORE, "short-body"):
        assert slow == "need-data", (data, slow)
    else:
        assert not isinstance(fast, str) and not isinstance(slow, str), (data, slow)
        assert fields(fast[0]) == fields(slow[0]), data
        assert fast[1] == slow[1], data


@st.composite
def plain_requests(draw: st.DrawFn) -> bytes:
    """Valid requests the fast path must take: GET/POST, origin-form, HTTP/1.1, one Host."""
    method = draw(st.sampled_from([b"GET", b"POST"]))
    target = b"/" + draw(st.text(TARGET_CHARS, max_size=60)).encode()
    ows = st.sampled_from([b"", b" ", b"\t", b"  \t"])
    value = st.lists(st.lists(st.sampled_from(VALUE_CHARS), min_size=1, max_size=8).map(b"".join),
                     max_size=3).map(b" ".join)
    names = st.text(TOKEN_CHARS, min_size=1, max_size=12).filter(
        lambda n: n.lower() not in ("host", "content-length", "connection", "transfer-encoding", "expect",
                                    "upgrade"))
    headers = draw(st.lists(st.tuples(names.map(str.encode), value), max_size=6))
    body = draw(st.binary(max_size=40)) if method == b"POST" or draw(st.booleans()) else b""
    lines = [(name, draw(ows) + val + draw(ows)) for name, val in headers]
    lines.insert(draw(st.integers(0, len(lines))), (draw(st.sampled_from([b"Host", b"host", b"HOST"])),
                                                    draw(ows) + b"example.test:80"))
    if body or draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), (b"Content-Length", b"%d" % len(body)))
    if draw(st.booleans()):
        lines.append((b"Connection", draw(st.sampled_from([b"keep-alive", b"Keep-Alive"]))))
    head = method + b" " + target + b" HTTP/1.1\r\n" + b"".join(n + b":" + v + b"\r\n" for n, v in lines)
    trailing = draw(st.sampled_from([b"", b"GET / HTTP/1.1\r\n", b"garbage"]))
    return head + b"\r\n" + body + trailing


@settings(max_examples=400, deadline=None)
@given(plain_requests())
def test_plain_requests_are_parsed_exactly_as_h11_parses_them(data: bytes) -> None:
    fast = fast_parse(data)
    assert isinstance(fast, tuple), (data, fast)
    assert_same_as_h11(data)


@st.composite
def mangled_plain(draw: st.DrawFn) -> bytes:
    """A plain request with bytes flipped, inserted, removed, or cut short."""
    data = bytearray(draw(plain_requests()))
    for _ in range(draw(st.integers(1, 5))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([
                b"\r\n", b"\n", b"\r", b":", b" ", b"\t", b"\x00", b"\x0b", b"\r\n\r\n", b"\n\n", b"\r\n ",
                b"host: x\r\n", b"content-length: 3\r\n", b"Content-Length: 1, 1\r\n", b"9" * 25,
                b"transfer-encoding: chunked\r\n", b"connection: close\r\n", b"\xff", b"HTTP/1.0",
            ]))
        elif op == "delete":
            del data[at]
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mangled_plain(), st.binary(min_size=1, max_size=300)))
def test_whatever_the_fast_path_accepts_h11_accepts_the_same_way(data: bytes) -> None:
    assert_same_as_h11(data)


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\nhost: t\r\n folded\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\nhost: t\n\n",  # bare LF line ends
    b"GET / HTTP/1.1\r\nhost: t\n\r\n",
    b"GET / HTTP/1.1\r\nx: y\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
    b"GET / HTTP/1.0\r\nhost: t\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nhost: t\r\n\r\n",
    b"OPTIONS / HTTP/1.1\r\nhost: t\r\n\r\n",
    b"get / HTTP/1.1\r\nhost: t\r\n\r\n",
    b"GET http://t/ HTTP/1.1\r\nhost: t\r\n\r\n",  # absolute-form
    b"GET * HTTP/1.1\r\nhost: t\r\n\r\n",
    b"POST / HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 1, 1\r\n\r\nx",
    b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: +1\r\n\r\nx",
    b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: \xb2\r\n\r\nxx",  # a latin-1 "digit"
    b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\nx",
    b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 5\r\nexpect: 100-continue\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: t\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: t\r\nbad header: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: t\r\nx: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nhost: t\r\nx: a\rb\r\n\r\n",
    b"GET  / HTTP/1.1\r\nhost: t\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nhost: t\r\n\r\n",  # a leading empty line
    b" GET / HTTP/1.1\r\n",  # h11 refuses at the first byte, before the head is complete
    b"GET / HTTP/1.1\r\nhost: t\n\n",
])
def test_unusual_requests_go_to_h11(data: bytes) -> None:
    assert parse_head(data, REMOTE) == FALLBACK


@pytest.mark.parametrize("data", [b"G", b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nhost: t\r\n",
                                  b"GARBAGE\r\nmore"])
def test_incomplete_heads_wait_for_more(data: bytes) -> None:
    assert parse_head(data, REMOTE) == NEED_MORE
    assert h11_parse(data) == "need-data"


def test_a_repeated_header_block_means_the_same_and_is_not_shared() -> None:
    data = b"POST /e?t=1 HTTP/1.1\r\nHost: t\r\nX-A: 1\r\nX-A: 2\r\nContent-Length: 2\r\n\r\nok"
    first, second = fast_parse(data), fast_parse(data.replace(b"t=1", b"t=2"))
    assert not isinstance(first, str) and not isinstance(second, str)
    first[0].headers["x-a"] = "changed"
    assert second[0].headers == {"host": "t", "x-a": "1, 2", "content-length": "2"}
    assert (second[0].query, second[0].body) == ({"t": "2"}, b"ok")
    assert fields(second[0]) == fields(h11_parse(data.replace(b"t=1", b"t=2"))[0])  # type: ignore[index]


def test_the_header_block_table_is_bounded() -> None:
    for i in range(3 * BLOCK_TABLE_LIMIT):
        assert isinstance(parse_head(b"GET / HTTP/1.1\r\nHost: t\r\nX-N: %d\r\n\r\n" % i, REMOTE), Head)
        assert len(cached_blocks()) <= BLOCK_TABLE_LIMIT
    assert isinstance(parse_head(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"v" * 5000 + b"\r\n\r\n", REMOTE),
                      Head)
    assert all(len(block) <= BLOCK_CACHED_UP_TO for block in cached_blocks())


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ab=&;%+2 0x"), max_size=24))
def test_query_strings_mean_what_parse_qsl_says(qs: str) -> None:
    expected: dict[str, str] = {}
    for key, value in parse_qsl(qs, keep_blank_values=True):
        expected.setdefault(key, value)
    assert split_target("/p%20q?" + qs) == ("/p q", expected)


def test_head_size_is_counted_as_on_the_h11_path() -> None:
    data = b"GET /abc HTTP/1.1\r\nHost:  t \r\nX-Long: " + b"v" * 100 + b"\r\n\r\n"
    head = parse_head(data, REMOTE)
    assert isinstance(head, Head)
    assert head.size == len("/abc") + 16 + (4 + 1 + 4) + (6 + 100 + 4)


# -- responses ------------------------------------------------------------------------------------------

def h11_encode(
    status: int, body: bytes, headers: list[tuple[str, str]], content_type: str, keep_alive: bool,
    extra: list[tuple[bytes, bytes]],
) -> tuple[bytes, bool] | None:
    """What connection.py's h11 path writes for a plain GET (a copy of its rules, on h11 itself)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
    assert isinstance(conn.next_event(), h11.Request)
    assert isinstance(conn.next_event(), h11.EndOfMessage)
    out: list[tuple[bytes, bytes]] = []
    has_body = status >= 200 and status not in (204, 304)
    if has_body:
        out += [(b"content-type", content_type.encode("latin-1")), (b"content-length", b"%d" % len(body))]
    for name, value in headers:
        if name.lower() == "connection":
            keep_alive = keep_alive and "close" not in {t.strip().lower() for t in value.split(",")}
        elif name.lower() not in ("content-length", "transfer-encoding"):
            out.append((name.encode("latin-1"), value.encode("latin-1")))
    out += extra
    if not keep_alive:
        out.append((b"connection", b"close"))
    try:
        reason = HTTPStatus(status).phrase.encode() if status in HTTPStatus._value2member_map_ else b""
        data = conn.send(h11.Response(status_code=status, headers=out, reason=reason)) or b""
        if has_body and body:
            data += conn.send(h11.Data(data=body)) or b""
        data += conn.send(h11.EndOfMessage()) or b""
    except h11.LocalProtocolError:
        return None
    return data, conn.our_state is h11.DONE


latin1_text = st.text(st.characters(max_codepoint=255), max_size=12)
header_names = st.one_of(st.sampled_from(["Access-Control-Allow-Origin", "Vary", "Connection", "connection",
                                          "Content-Length", "Transfer-Encoding", "X-A"]),
                         st.text(TOKEN_CHARS, min_size=1, max_size=8), latin1_text)
header_values = st.one_of(
    st.sampled_from(["*", "Origin", "close", "keep-alive", "Keep-Alive, Close", "http://a.test", " lead",
                     "trail ", "a\tb", "x\r\ny"]),
    latin1_text,
)


@settings(max_examples=600, deadline=None)
@given(
    status=st.one_of(st.sampled_from([200, 204, 304, 400, 403, 404, 413, 500]), st.integers(100, 1100)),
    body=st.binary(max_size=30),
    headers=st.lists(st.tuples(header_names, header_values), max_size=4),
    content_type=st.one_of(st.sampled_from(["text/plain; charset=UTF-8", "text/html", "application/json"]),
                           latin1_text),
    keep_alive=st.booleans(),
    extra=st.lists(st.sampled_from([(b"server", b"supervisor"), (b"x-bad", b" v")]), max_size=1),
)
def test_responses_are_written_as_h11_writes_them(
    status: int, body: bytes, headers: list[tuple[str, str]], content_type: str, keep_alive: bool,
    extra: list[tuple[bytes, bytes]],
) -> None:
    fast = encode_response(status, body, headers, content_type, keep_alive, extra)
    assert fast == h11_encode(status, body, headers, content_type, keep_alive, extra)


# -- over real sockets -----------------------------------------------------------------------------------

async def test_fast_and_h11_requests_share_one_keep_alive_connection() -> None:
    async with open_http_server(make_app(), port=0) as server:
        client = await RawClient.connect(server.port)
        chunked = (b"POST /echo/ HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n0\r\n\r\n")
        # Pipelined: plain, h11 (chunked), plain, HEAD (h11), plain, all in one write.
        await client.send(request("POST", "/echo/1", b"one") + chunked + request("POST", "/echo/2", b"two")
                          + request("HEAD", "/healthz") + request("GET", "/healthz"))
        bodies = [(await client.response()).body for _ in range(3)]
        assert bodies == [b"one", b"abc", b"two"]
        assert (await client.response(head=True)).status == 200
        reply = await client.response()
        assert (reply.status, reply.body) == (200, b"ok")


async def test_a_request_sent_a_byte_at_a_time_is_read_whole() -> None:
    async with open_http_server(make_app(), port=0) as server:
        client = await RawClient.connect(server.port)
        for byte in request("POST", "/echo/x", b"hello"):
            await client.send(bytes([byte]))
            await trio.lowlevel.checkpoint()
        reply = await client.response()
        assert (reply.status, reply.body) == (200, b"hello")


async def test_a_peer_closing_mid_body_gets_400() -> None:
    async with open_http_server(make_app(), port=0) as server:
        client = await RawClient.connect(server.port)
        await client.send(b"POST /echo/ HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nabc")
        await client.stream.send_eof()
        assert (await client.response()).status == 400
        assert await client.closed_by_server()


async def test_an_invalid_response_to_a_plain_request_is_500_and_close() -> None:
    async def bad(req: Request) -> Response:
        return Response(200, b"x", [("X-Bad", "a\r\nInjected: 1")])

    async with open_http_server(bad, port=0) as server:
        client = await RawClient.connect(server.port)
        await client.send(request("GET", "/"))
        reply = await client.response()
        assert reply.status == 500
        assert "injected" not in reply.headers
        assert await client.closed_by_server()
