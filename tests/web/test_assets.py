"""The Admin UI's files at /admin-ui/ and the client bundle at /socket.io/*.js, from web/node_modules."""

from __future__ import annotations

import re

import pytest

from server.app import SupervisorApp
from server.cli.http_client import request
from server.web.assets import find_web_modules, rewrite_index

needs_modules = pytest.mark.skipif(
    find_web_modules() is None, reason="web/node_modules missing: cd web && npm ci --omit=peer"
)


def test_rewrite_index_drops_remote_stylesheets_and_presets_the_url() -> None:
    html = (
        '<html><head><link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto:100">'
        '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@mdi/font@latest/css/'
        'materialdesignicons.min.css"><link href="css/app.css" rel="stylesheet"></head></html>'
    )
    out = rewrite_index(html)
    assert "googleapis" not in out
    assert "jsdelivr" not in out
    assert 'href="mdi/css/materialdesignicons.min.css"' in out
    assert 'href="css/app.css"' in out
    assert 'localStorage.setItem("server_url",location.origin)' in out


async def test_admin_ui_without_slash_redirects(app: SupervisorApp) -> None:
    response = await request("GET", app.url, "/admin-ui")
    assert response.status == 308
    assert response.headers["location"] == "/admin-ui/"


@needs_modules
async def test_admin_ui_index_has_no_remote_url_and_its_assets_load(app: SupervisorApp) -> None:
    index = await request("GET", app.url, "/admin-ui/")
    assert index.status == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    html = index.body.decode()
    assert not re.search(r'(href|src)="(https?:)?//', html), html
    assets = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert any(a.startswith("js/app.") for a in assets)
    for asset in assets:
        response = await request("GET", app.url, "/admin-ui/" + asset)
        assert response.status == 200, asset
    css = await request("GET", app.url, "/admin-ui/mdi/css/materialdesignicons.min.css")
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    font = re.search(r"url\(\"?\.\./fonts/(materialdesignicons-webfont\.woff2)", css.body.decode())
    assert font is not None
    woff2 = await request("GET", app.url, "/admin-ui/mdi/fonts/" + font.group(1) + "?v=7.4.47")
    assert (woff2.status, woff2.headers["content-type"]) == (200, "font/woff2")
    etag = woff2.headers["etag"]
    again = await request("GET", app.url, "/admin-ui/mdi/fonts/" + font.group(1),
                          headers=[("If-None-Match", etag)])
    assert (again.status, again.body) == (304, b"")


@needs_modules
@pytest.mark.parametrize("name", ["socket.io.js", "socket.io.min.js", "socket.io.esm.min.js",
                                  "socket.io.msgpack.min.js"])
async def test_client_bundle_as_serve_client_does(app: SupervisorApp, name: str) -> None:
    response = await request("GET", app.url, "/socket.io/" + name)
    assert response.status == 200
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    assert response.headers["etag"] == '"4.8.4"'
    assert response.headers["cache-control"] == "public, max-age=0"
    assert b"Socket.IO" in response.body[:400] or b"engine.io" in response.body
    for tag in ('"4.8.4"', 'W/"4.8.4"'):
        cached = await request("GET", app.url, "/socket.io/" + name, headers=[("If-None-Match", tag)])
        assert (cached.status, cached.body) == (304, b"")
    source_map = await request("GET", app.url, "/socket.io/" + name + ".map")
    assert (source_map.status, source_map.headers["content-type"]) == (200, "application/json")


async def test_engine_io_still_answers_under_the_same_prefix(app: SupervisorApp) -> None:
    response = await request("GET", app.url, "/socket.io/", query={"EIO": "4", "transport": "polling"})
    assert response.status == 200
    assert response.body.startswith(b"0{")


@pytest.mark.parametrize("path", [
    "/admin-ui/../pyproject.toml", "/admin-ui/%2e%2e/%2e%2e/package.json", "/admin-ui/..%2f..%2fpackage.json",
    "/admin-ui/mdi/../../admin-ui/package.json", "/admin-ui/mdi/package.json", "/admin-ui/.bin/x",
    "/admin-ui/js/..%5c..%5cindex.html", "/dashboard/../server/app.py", "/dashboard/%2e%2e/dashboard.py",
    "/dashboard/..%2flogin.py", "/dashboard/%2e%2e%2f%2e%2e%2fapp.py", "/admin-ui/%00index.html",
])
async def test_path_traversal_on_static_routes_is_refused(app: SupervisorApp, path: str) -> None:
    response = await request("GET", app.url, path)
    assert response.status in (400, 404), (path, response.status)
    assert b"import " not in response.body
    assert b'"name"' not in response.body
