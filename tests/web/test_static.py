"""Static files: only files inside the root, the right content types, ETag and 304."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.http import Request
from server.web.static import StaticRoot, content_type, etag_for, not_modified, safe_relative


def _request(path: str = "/x", method: str = "GET", **headers: str) -> Request:
    return Request(method, path, path, {}, {k.replace("_", "-"): v for k, v in headers.items()}, b"",
                   ("127.0.0.1", 1))


@pytest.fixture
def root(tmp_path: Path) -> StaticRoot:
    (tmp_path / "site" / "css").mkdir(parents=True)
    (tmp_path / "site" / "index.html").write_text("<h1>hi</h1>")
    (tmp_path / "site" / "css" / "a.css").write_text("body{}")
    (tmp_path / "site" / ".secret").write_text("hidden")
    (tmp_path / "outside.txt").write_text("not yours")
    (tmp_path / "site" / "link.txt").symlink_to(tmp_path / "outside.txt")
    return StaticRoot(tmp_path / "site")


@pytest.mark.parametrize("path", [
    "../outside.txt", "css/../../outside.txt", "..", "./index.html", "css/./a.css", ".secret",
    "css\\..\\..\\outside.txt", "index.html\x00.css", "C:/windows", "",
])
def test_paths_that_climb_hide_or_smuggle_are_refused(root: StaticRoot, path: str) -> None:
    assert root.resolve(path) is None


def test_a_symlink_leading_outside_the_root_is_refused(root: StaticRoot) -> None:
    assert root.resolve("link.txt") is None


def test_files_inside_resolve(root: StaticRoot) -> None:
    assert root.resolve("css/a.css") == root.path / "css" / "a.css"
    assert root.resolve("/index.html") == root.path / "index.html"
    assert root.resolve("css") is None  # a directory is not a file


def test_safe_relative_keeps_plain_segments() -> None:
    assert str(safe_relative("a//b/c.js")) == "a/b/c.js"
    assert safe_relative("a/../b") is None


@pytest.mark.parametrize(("name", "expected"), [
    ("a.html", "text/html; charset=utf-8"), ("a.js", "application/javascript; charset=utf-8"),
    ("a.css", "text/css; charset=utf-8"), ("a.svg", "image/svg+xml"), ("a.woff2", "font/woff2"),
    ("a.woff", "font/woff"), ("a.ttf", "font/ttf"), ("a.map", "application/json"), ("a.png", "image/png"),
    ("a.unknownext", "application/octet-stream"),
])
def test_content_types(name: str, expected: str) -> None:
    assert content_type(name) == expected


def test_if_none_match_strong_weak_list_and_star() -> None:
    tag = etag_for(b"body")
    assert not_modified(_request(if_none_match=tag), tag)
    assert not_modified(_request(if_none_match="W/" + tag), tag)
    assert not_modified(_request(if_none_match=f'"other", {tag}'), tag)
    assert not_modified(_request(if_none_match="*"), tag)
    assert not not_modified(_request(if_none_match='"other"'), tag)
    assert not not_modified(_request(), tag)


async def test_respond_200_then_304_head_and_405(root: StaticRoot) -> None:
    first = await root.respond(_request(), "css/a.css")
    assert first.status == 200
    assert first.body == b"body{}"
    assert first.content_type == "text/css; charset=utf-8"
    etag = dict(first.headers)["ETag"]
    again = await root.respond(_request(if_none_match=etag), "css/a.css")
    assert again.status == 304
    assert again.body == b""
    head = await root.respond(_request(method="HEAD"), "css/a.css")
    assert (head.status, head.body) == (200, b"")
    post = await root.respond(_request(method="POST"), "css/a.css")
    assert post.status == 405
    missing = await root.respond(_request(), "../outside.txt")
    assert missing.status == 404
    assert b"not yours" not in missing.body
