"""The Redis store: session records, event logs as Streams, snapshots, and fenced appends (cluster mode).

Owns: ``RedisStore``, ``LogEntry`` and ``RedisUnavailable``. Knows the ``Store`` contract, the key layout
(``_redis_keys``), the Lua library (``_redis_lua``) and coredis; knows nothing of actors, leases' renewal
or the network beyond Redis. ``actors.cluster`` builds placement, routing and tailing on ``client``.

Durability: an append has returned when Redis has applied it; with ``appendfsync always`` (what
docs/cluster.md asks for) it is on disk too. Writes are never retried by the client (``NoRetryPolicy``):
the default coredis policy re-sends a write whose reply was lost. Every call is bounded by ``timeout``
seconds: while Redis is unreachable, calls raise ``RedisUnavailable`` (a ``StoreError``) instead of hanging,
and work again once it is back. An append that raised ``RedisUnavailable`` may or may not have been applied:
``append_applied`` tells which, once Redis answers; a blind retry is refused by the GAP check anyway.

Fencing: ``append(..., fence=N)`` and ``save_snapshot(..., fence=N)`` are refused with ``FencedOut`` unless
the session's lease carries token N, in the same atomic step as the id check (``EventIdConflict``). Without
a fence nothing is checked (a single node on Redis) unless ``require_fence`` is set.

Client lifetime: coredis clients must be entered (``async with client:``) and their task group exited by the
task that entered it. ``open`` therefore enters it in a trio system task that the store owns and ``close``
ends (and waits for), so ``open`` and ``close`` may run in different tasks, as the Store protocol allows.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import coredis
import structlog
import trio
from coredis.exceptions import AuthenticationError, RedisError, ResponseError
from coredis.exceptions import ConnectionError as RedisConnectionError
from coredis.retry import NoRetryPolicy

from actors.events import StoredEvent
from actors.stores._json import dumps
from actors.stores._redis_keys import SESSION_INDEX, SessionKeys
from actors.stores._redis_lua import LIBRARY
from actors.stores.base import EventIdConflict, FencedOut, SessionRecord, StoreError, StoreUnavailable
from actors.stores.redis_url import RedisURL, parse_redis_url

if TYPE_CHECKING:
    from actors.stores.fenced import FencedStore

__all__ = ["LogEntry", "RedisStore", "RedisUnavailable", "entry_to_event", "stream_id"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

_FIELDS = ["o", "c", "l", "s", "u"]  # owner, created_at, last event id, snapshot, snapshot upto


class RedisUnavailable(StoreUnavailable):
    """Redis did not answer in time or the connection failed; the operation's outcome may be unknown."""

    may_have_applied = True


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log entry as cluster code needs it: the event and the routed action it answers (if any)."""

    event: StoredEvent
    inbox_id: str | None = None


def stream_id(event_id: int) -> str:
    """The Stream entry id of an event: ``<event_id>-1`` (``0-0`` is not a valid Stream id)."""
    return f"{event_id}-1"


def entry_to_event(entry_id: bytes | str, fields: Any) -> LogEntry:
    raw_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    event_id = int(raw_id.split("-", 1)[0])
    text = fields[b"e"].decode()
    inbox = fields.get(b"i")
    return LogEntry(StoredEvent.from_json(event_id, text), inbox.decode() if inbox else None)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


class RedisStore:
    """``Store`` on Redis. ``url`` is a redis URL (see ``redis_url``) or a parsed ``RedisURL``."""

    fenced_snapshots = True  # actors.snapshots: snapshots carry the lease's fence and may release it

    def __init__(
        self,
        url: str | RedisURL = "redis://127.0.0.1:6379/0",
        *,
        timeout: float | None = None,
        require_fence: bool = False,
        max_connections: int = 64,
    ) -> None:
        self.url = parse_redis_url(url) if isinstance(url, str) else url
        self.timeout = timeout if timeout is not None else self.url.timeout
        self.require_fence = require_fence
        self.max_connections = max_connections
        self._client: coredis.Redis[bytes] | None = None
        self._stop: trio.Event | None = None
        self._stopped = trio.Event()
        self._state = "new"  # new -> open -> closed

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, timeout={self.timeout}, state={self._state})"

    @property
    def client(self) -> coredis.Redis[bytes]:
        """The entered coredis client (bytes replies, no retries), for ``actors.cluster``."""
        if self._client is None or self._state != "open":
            raise StoreError(f"{self!r} is not open")
        return self._client

    # lifecycle

    def make_client(self) -> coredis.Redis[bytes]:
        """A new client with this store's settings (not entered): for a pub/sub subscriber of its own."""
        u = self.url
        return coredis.Redis(
            host=u.host,
            port=u.port,
            db=u.db,
            username=u.username,
            password=u.password,
            ssl=u.tls,
            connect_timeout=min(self.timeout, 2.0),
            stream_timeout=self.timeout,
            max_connections=self.max_connections,
            retry_policy=NoRetryPolicy(),
            decode_responses=False,
        )

    async def open(self) -> None:
        if self._state != "new":
            raise StoreError(f"{self!r} cannot be opened twice")
        client = self.make_client()
        entered = trio.Event()
        stop = self._stop = trio.Event()
        self._stopped = trio.Event()
        failure: list[BaseException] = []

        async def own_client() -> None:
            # The client's task group lives in this task, so open() and close() may run in any tasks.
            try:
                async with client:
                    self._client = client
                    entered.set()
                    await stop.wait()
            except Exception as exc:  # a system task must not raise: report to open() or log
                failure.append(exc)
                log.warning("redis client ended with an error", error=repr(exc))
            finally:
                self._client = None
                self._stopped.set()
                entered.set()

        trio.lowlevel.spawn_system_task(own_client, name=f"redis client {self.url!r}")
        await entered.wait()
        if failure or self._client is None:
            self._state = "closed"
            raise RedisUnavailable(f"cannot open {self!r}: {failure[0] if failure else 'client ended'}")
        self._state = "open"
        try:
            await self.call("load the function library", lambda: client.function_load(LIBRARY, replace=True))
        except BaseException:
            await self.close()
            raise
        log.info("redis store opened", url=repr(self.url))

    async def close(self) -> None:
        """Idempotent; waits until the client's connections are closed."""
        was_open = self._state == "open"
        self._state = "closed"
        if self._stop is not None:
            self._stop.set()
            await self._stopped.wait()
            self._stop = None
            if was_open:
                log.info("redis store closed", url=repr(self.url))
        else:
            await trio.lowlevel.checkpoint()

    async def __aenter__(self) -> RedisStore:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # the one place every call goes through

    async def call(self, what: str, make: Callable[[], Awaitable[T]], session_id: str | None = None) -> T:
        """Run one Redis call with the timeout; turn Redis errors into store errors."""
        if self._state != "open":
            raise StoreError(f"{self!r} is not open")
        where = f"session {session_id!r}: " if session_id is not None else ""
        try:
            with trio.fail_after(self.timeout):
                return await make()
        except trio.TooSlowError as exc:
            raise RedisUnavailable(f"{where}{what}: Redis did not answer within {self.timeout}s") from exc
        except AuthenticationError as exc:
            raise StoreError(f"{where}{what}: Redis refused the credentials (URL password): {exc}") from exc
        except ResponseError as exc:
            message = str(exc)
            code = message.split(" ", 1)[0]
            if code == "NOSESSION":
                raise StoreError(f"{where}the session does not exist: create it first ({what})") from exc
            if code == "GAP":
                raise EventIdConflict(
                    f"{where}the events do not continue the log, whose last event id is "
                    f"{message.split(' ', 1)[1]}"
                ) from exc
            if code == "STALE":
                raise FencedOut(f"{where}{what} refused by the fence: {message[6:]}") from exc
            if code == "RANGE":
                raise StoreError(
                    f"{where}a snapshot cannot cover events beyond the log, which ends at "
                    f"{message.split(' ', 1)[1]}"
                ) from exc
            if code == "OLDER":
                raise StoreError(f"{where}a snapshot older than the stored one (upto {message[6:]})") from exc
            raise StoreError(f"{where}{what}: Redis refused: {message}") from exc
        except (RedisConnectionError, TimeoutError, OSError) as exc:
            raise RedisUnavailable(f"{where}{what}: Redis is unreachable: {exc}") from exc
        except RedisError as exc:
            raise StoreError(f"{where}{what}: {exc}") from exc

    async def fcall(
        self, what: str, function: str, keys: Sequence[str], args: Sequence[str | int],
        session_id: str | None = None,
    ) -> Any:
        """``call`` of one function of the Lua library (``_redis_lua``): ``FCALL function keys args``."""
        client = self.client
        return await self.call(what, lambda: client.fcall(function, keys, args), session_id)

    async def _nothing(self) -> None:
        """An operation with nothing to send: still refused unless open, still a checkpoint."""
        self.client  # noqa: B018  (raises when not open)
        await trio.lowlevel.checkpoint()

    # writes

    async def create(self, session_id: str, owner: str | None) -> SessionRecord:
        keys = SessionKeys(session_id)
        client = self.client
        args = ["0" if owner is None else "1", owner or "", repr(time.time())]
        reply: Any = await self.fcall("create", "ss_create", [keys.meta], args, session_id)
        # The index is its own key (another Cluster slot): added after the record, idempotently.
        await self.call("index", lambda: client.zadd(SESSION_INDEX, {session_id: 0}), session_id)
        return self._record(session_id, reply, with_snapshot=True)

    async def append(
        self,
        session_id: str,
        events: list[StoredEvent],
        *,
        fence: int | None = None,
        inbox_ids: Sequence[str | None] | None = None,
    ) -> None:
        """Append atomically: refused with ``FencedOut`` unless ``fence`` is the lease's token (when given),
        ``EventIdConflict`` unless the ids continue the log. ``inbox_ids[k]`` is the routed action that
        ``events[k]`` answers; the largest one becomes the session's inbox position in the same step."""
        if fence is None and self.require_fence:
            raise FencedOut(f"session {session_id!r}: this store requires a fence on every append")
        if not events:
            return await self._nothing()
        first = events[0].id
        for offset, event in enumerate(events):
            if event.id != first + offset:
                raise EventIdConflict(
                    f"session {session_id!r}: appended ids must be consecutive, got "
                    f"{[e.id for e in events][:10]}"
                )
        if inbox_ids is not None and len(inbox_ids) != len(events):
            raise ValueError("inbox_ids must have one entry per event")
        keys = SessionKeys(session_id)
        high = ""
        args: list[str | int] = ["" if fence is None else str(fence), first, keys.channel, ""]
        for k, event in enumerate(events):
            inbox_id = inbox_ids[k] if inbox_ids is not None else None
            if inbox_id:
                high = _max_stream_id(high, inbox_id)
            args.append(event.json_text or dumps(event.payload))
            args.append(inbox_id or "")
        args[3] = high
        await self.fcall(f"append of events {first}..{events[-1].id}", "ss_append",
                         [keys.meta, keys.log, keys.lease, keys.inbox], args, session_id)

    async def append_applied(self, session_id: str, events: list[StoredEvent]) -> bool:
        """After an append raised ``RedisUnavailable``: True if it was applied (every id holds exactly the
        text sent), False if not (the log ends before it: appending again is safe). Raises
        ``EventIdConflict`` if other events took those ids, ``RedisUnavailable`` if Redis is still away."""
        if not events:
            return True
        found = await self.entries_after(session_id, events[0].id - 1, len(events))
        if not found:
            return False
        sent = [(event.id, event.json_text or dumps(event.payload)) for event in events]
        if [(e.event.id, e.event.json_text) for e in found] == sent:
            return True
        raise EventIdConflict(
            f"session {session_id!r}: events {events[0].id}..{events[-1].id} are not the ones appended"
        )

    async def save_snapshot(
        self,
        session_id: str,
        snapshot: dict[str, Any],
        event_id: int,
        *,
        fence: int | None = None,
        release: bool = False,
        announce: bool = False,
    ) -> None:
        """Store the snapshot; fenced, it is refused (``FencedOut``) unless the lease has that token, and
        ``release=True`` deletes the lease in the same step (passivation hands over at once), with
        ``announce`` publishing ``released`` on the session's doorbell (``actors.cluster.watchers``)."""
        try:
            text = dumps(snapshot)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"session {session_id!r}: snapshot is not JSON-serializable: {exc}") from exc
        keys = SessionKeys(session_id)
        channel = keys.channel if announce else ""
        args = ["" if fence is None else str(fence), text, str(event_id), "1" if release else "0", channel]
        await self.fcall("save_snapshot", "ss_snapshot", [keys.meta, keys.lease], args, session_id)

    async def delete(self, session_id: str) -> None:
        keys = SessionKeys(session_id)
        client = self.client
        # The fence counter stays: tokens keep increasing across a delete and re-create.
        await self.call("delete", lambda: client.delete(keys.deleted()), session_id)
        await self.call("unindex", lambda: client.zrem(SESSION_INDEX, [session_id]), session_id)

    # reads

    async def load(self, session_id: str) -> SessionRecord | None:
        keys = SessionKeys(session_id)
        client = self.client
        reply: Any = await self.call("load", lambda: client.hmget(keys.meta, _FIELDS), session_id)
        if reply[1] is None:
            return None
        return self._record(session_id, reply, with_snapshot=True)

    async def load_with_events(
        self, session_id: str, limit: int
    ) -> tuple[SessionRecord | None, list[StoredEvent]]:
        """Rehydration: the record and up to ``limit`` events after its snapshot_event_id."""
        record = await self.load(session_id)
        if record is None or limit <= 0:
            return record, []
        return record, await self.events_after(session_id, record.snapshot_event_id, limit)

    async def inbox_position(self, session_id: str) -> str:
        """The id of the last routed action the log answers (``0-0`` if none): the inbox resumes after it."""
        keys = SessionKeys(session_id)
        client = self.client
        value: Any = await self.call("inbox position", lambda: client.hget(keys.meta, "i"), session_id)
        return "0-0" if value is None else value.decode()

    async def entries_after(self, session_id: str, after_id: int, limit: int) -> list[LogEntry]:
        """Up to ``limit`` log entries with id > after_id, with the inbox id each answers."""
        if limit <= 0:
            await self._nothing()
            return []
        keys, client, start = SessionKeys(session_id), self.client, stream_id(max(after_id + 1, 0))
        reply: Any = await self.call("read the log", lambda: client.xrange(keys.log, start, "+", count=limit),
                                     session_id)
        return [entry_to_event(entry.identifier, entry.field_values) for entry in reply]

    async def events_after(self, session_id: str, after_id: int, limit: int) -> list[StoredEvent]:
        return [entry.event for entry in await self.entries_after(session_id, after_id, limit)]

    async def list_sessions(self, *, after: str | None = None, limit: int = 100) -> list[SessionRecord]:
        client = self.client
        if limit <= 0:
            await trio.lowlevel.checkpoint()
            return []
        low = "-" if after is None else f"({after}"
        ids: Any = await self.call(
            "list",
            lambda: client.zrange(
                SESSION_INDEX, low, "+", sortby=coredis.PureToken.BYLEX, offset=0, count=limit
            ),
        )
        names = [raw.decode() for raw in ids]
        replies: list[Any] = [None] * len(names)

        async def one(index: int, sid: str) -> None:
            meta = SessionKeys(sid).meta
            replies[index] = await self.call("list", lambda: client.hmget(meta, _FIELDS), sid)

        async with trio.open_nursery() as nursery:  # coredis multiplexes concurrent calls
            for index, sid in enumerate(names):
                nursery.start_soon(one, index, sid)
        # A session deleted between its two steps may linger in the index: it is skipped here.
        return [
            self._record(sid, reply, with_snapshot=False)
            for sid, reply in zip(names, replies, strict=True)
            if reply[1] is not None
        ]

    async def count_sessions(self) -> int:
        client = self.client
        count: int = await self.call("count", lambda: client.zcard(SESSION_INDEX))
        return count

    async def ping(self) -> float:
        """Round-trip seconds of a PING (health checks, the Redis latency metric)."""
        client = self.client
        started = trio.current_time()
        await self.call("ping", lambda: client.ping())
        return trio.current_time() - started

    @staticmethod
    def _record(session_id: str, reply: Any, *, with_snapshot: bool) -> SessionRecord:
        owner, created, last, snapshot, upto = reply
        return SessionRecord(
            session_id=session_id,
            owner=_text(owner),
            created_at=float(created),
            last_event_id=int(last),
            snapshot=json.loads(snapshot) if with_snapshot and snapshot is not None else None,
            snapshot_event_id=int(upto) if upto is not None else -1,
        )


def _max_stream_id(a: str, b: str) -> str:
    if not a:
        return b

    def key(value: str) -> tuple[int, int]:
        ms, _, seq = value.partition("-")
        return int(ms), int(seq or 0)

    return a if key(a) >= key(b) else b


if TYPE_CHECKING:

    def _is_a_fenced_store(store: RedisStore) -> FencedStore:  # mypy checks RedisStore against the protocol
        return store
