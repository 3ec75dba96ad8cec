"""Router: exact routes, longest prefix, trailing-slash alias, 404 fallback; methods pass through."""

from __future__ import annotations

import pytest

from server.http import Handler, Request, Response, Router


def make_request(path: str, method: str = "GET") -> Request:
    return Request(method, path, path, {}, {}, b"", ("127.0.0.1", 1))


def handler(name: str) -> Handler:
    async def respond(request: Request) -> Response:
        return Response(200, f"{name} {request.method}".encode())

    return respond


@pytest.fixture
def router() -> Router:
    router = Router()
    router.mount("/socket.io/", handler("engine"))
    router.mount("/socket.io/admin/", handler("admin"))
    router.route("/healthz", handler("health"))
    return router


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/socket.io/", b"engine GET"),
        ("/socket.io", b"engine GET"),  # the mount without its trailing slash
        ("/socket.io/anything/deeper", b"engine GET"),
        ("/socket.io/admin/x", b"admin GET"),  # the longest prefix wins
        ("/healthz", b"health GET"),
    ],
)
async def test_paths_reach_their_handler(router: Router, path: str, expected: bytes) -> None:
    response = await router(make_request(path))
    assert isinstance(response, Response)
    assert (response.status, response.body) == (200, expected)


@pytest.mark.parametrize("path", ["/", "/healthz/", "/healthzz", "/socket.iox", "/other"])
async def test_unmatched_paths_are_404(router: Router, path: str) -> None:
    response = await router(make_request(path))
    assert isinstance(response, Response)
    assert response.status == 404


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "POST", "DELETE"])
async def test_every_method_passes_through(router: Router, method: str) -> None:
    response = await router(make_request("/socket.io/", method))
    assert isinstance(response, Response)
    assert response.body == f"engine {method}".encode()


def test_paths_must_be_absolute() -> None:
    router = Router()
    with pytest.raises(ValueError):
        router.mount("socket.io/", handler("x"))
    with pytest.raises(ValueError):
        router.route("healthz", handler("x"))
