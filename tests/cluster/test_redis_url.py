"""Redis URLs: parsing (pure) and a password-protected real redis-server reached with one."""

from __future__ import annotations

import pytest

from actors.stores import StoreError
from actors.stores.redis import RedisStore, RedisUnavailable
from actors.stores.redis_url import PASSWORD_ENV, RedisURL, RedisURLError, parse_redis_url
from tests.support.redis_server import RedisServer


def test_plain_url_with_host_port_and_db() -> None:
    assert parse_redis_url("redis://cache.internal:6380/3", env={}) == RedisURL("cache.internal", 6380, 3)


def test_defaults() -> None:
    url = parse_redis_url("redis://", env={})
    assert (url.host, url.port, url.db, url.password, url.tls, url.timeout) == (
        "127.0.0.1", 6379, 0, None, False, 5.0
    )


def test_rediss_is_tls() -> None:
    url = parse_redis_url("rediss://r.example:6390/1", env={})
    assert url.tls and (url.host, url.port, url.db) == ("r.example", 6390, 1)


def test_password_in_the_url_is_percent_decoded_and_never_printed() -> None:
    url = parse_redis_url("redis://:p%40ss%3Aw0rd@h:1/0", env={})
    assert url.password == "p@ss:w0rd" and url.username is None
    assert "p@ss" not in repr(url) and "***" in repr(url)
    acl = parse_redis_url("redis://app:secret@h/0", env={})
    assert (acl.username, acl.password) == ("app", "secret")


def test_password_from_a_named_environment_variable_or_the_default_one() -> None:
    assert parse_redis_url("redis://h/0?password_env=MY_PW", env={"MY_PW": "x1"}).password == "x1"
    assert parse_redis_url("redis://h/0", env={PASSWORD_ENV: "x2"}).password == "x2"
    assert parse_redis_url("redis://:inline@h/0", env={PASSWORD_ENV: "x2"}).password == "inline"


def test_timeout_option() -> None:
    assert parse_redis_url("redis://h/0?timeout=2.5", env={}).timeout == 2.5


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://h/0", "not a redis URL"),
        ("redis://h/zero", "database number"),
        ("redis://h:notaport/0", "malformed"),
        ("redis://h/0?password_env=MISSING", "is not set"),
        ("redis://h/0?timeout=0", "positive"),
        ("redis://h/0?timeout=soon", "positive"),
        ("redis://h/0?pool=3", "unknown option"),
    ],
)
def test_bad_urls_are_clear_errors(url: str, message: str) -> None:
    with pytest.raises(RedisURLError, match=message) as info:
        parse_redis_url(url, env={})
    assert isinstance(info.value, StoreError) and isinstance(info.value, ValueError)


async def test_a_password_protected_redis_is_reached_with_the_password_and_refused_without() -> None:
    with RedisServer(password="s3cret:pw") as server:
        async with RedisStore(f"redis://:s3cret%3Apw@127.0.0.1:{server.port}/0", timeout=2) as store:
            await store.create("s", None)
            assert await store.count_sessions() == 1
        denied = RedisStore(f"redis://127.0.0.1:{server.port}/0", timeout=2)
        with pytest.raises(StoreError, match="refused the credentials") as info:
            await denied.open()
        assert not isinstance(info.value, RedisUnavailable)  # not "down": wrong credentials, said plainly
        await denied.close()
