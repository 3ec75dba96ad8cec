"""CorsPolicy's per-origin memory: the same answers as a policy that has seen nothing, bounded, unshared."""

from __future__ import annotations

import pytest

from server.engineio.cors import CorsPolicy
from server.http import Request

POLICIES: list[tuple[str | list[str] | None, bool]] = [
    (None, True), (None, False), ("*", False), ("*", True),
    (["https://app.example", "http://o7.example/"], True),
]


def req(origin: str | None, host: str = "o3.example", method: str = "GET") -> Request:
    headers = {"host": host, "access-control-request-headers": "content-type"}
    if origin is not None:
        headers["origin"] = origin
    return Request(method, "/socket.io/", "/socket.io/", {}, headers, b"", ("127.0.0.1", 1))


@pytest.mark.parametrize(("allowed", "credentials"), POLICIES)
def test_remembered_answers_are_the_fresh_answers(allowed: str | list[str] | None, credentials: bool) -> None:
    policy = CorsPolicy(allowed, credentials)
    # A few origins over and over (remembered), then more than it keeps (forgotten, then remembered again).
    origins = [f"http://o{i % 8}.example" for i in range(200)]
    origins += [f"http://o{i % 300}.example" for i in range(900)]
    origins += ["https://app.example", "bad://[x", None] * 3
    hosts = ["o3.example", "O3.EXAMPLE", ""]
    for index, origin in enumerate(origins):
        request = req(origin, hosts[index % 2 if index < 200 else (index // 300) % 3])
        fresh = CorsPolicy(allowed, credentials)
        assert policy.allows(request) == fresh.allows(request), origin
        assert policy.headers(request) == fresh.headers(request), origin
        assert policy.preflight(request).headers == fresh.preflight(request).headers, origin


def test_returned_headers_are_not_shared() -> None:
    policy = CorsPolicy(["https://app.example"], True)
    request = req("https://app.example")
    first = policy.headers(request)
    first.append(("X-Mine", "1"))
    policy.preflight(request)
    assert policy.headers(request) == [
        ("Access-Control-Allow-Origin", "https://app.example"), ("Vary", "Origin"),
        ("Access-Control-Allow-Credentials", "true"),
    ]
