"""Key and channel names of the Redis store and cluster coordination, in one place.

Owns: the naming scheme. Every key of one session carries the hash tag ``{<session id>}`` so that all of
them live in one Redis Cluster slot and one Lua function may touch them together. The session index
(``sessions``, a sorted set read with ZRANGE BYLEX) is the one key shared by all sessions; it is only
ever written by single commands of its own, never inside a session's function, so Cluster can come later.
Knows nothing of what the keys hold beyond their names.

Keys and channels:
- ``sess:{sid}:meta``: hash: o owner, c created_at, l last event id, s snapshot JSON, u its upto,
  i the inbox high-water mark (the last routed action the log answers).
- ``sess:{sid}:log``: Stream, entry id ``<event_id>-1``, fields e (event JSON), i (inbox id, optional).
- ``sess:{sid}:lease``: ``"<node>:<fence>"`` with a PX TTL.
- ``sess:{sid}:fence``: INCR counter, no TTL: the source of fencing tokens (kept across delete).
- ``sess:{sid}:inbox``: Stream of actions routed to the owner (auto ids), trimmed up to the high-water mark.
- ``sess:{sid}:ev``: channel: the doorbell carrying the events just appended (to tailing nodes), or that
  the owner closed or released the session (``actors.cluster.watchers``).
- ``sess:{sid}:watch``: hash: node id -> expiry (Redis time, ms): nodes other than the owner that serve
  connections of the session (they keep its owner from passivating it); PX TTL of the longest entry.
- ``node:{nid}:ring``: channel: the doorbell to the owner node, carrying the routed entry
  (``actors.cluster.inbox.parse_ring``).
- ``user:{uid}:live``: hash: session id -> ``"<fence> <last activity, unix ms>"``: the sessions a user had
  live on any node (a hint for cluster-wide per-user caps: a session counts only while its lease exists).
- ``sessions``: sorted set, score 0: every session id (listing and counting).
"""

from __future__ import annotations

__all__ = ["SESSION_INDEX", "SessionKeys", "node_ring", "user_sessions"]

SESSION_INDEX = "sessions"


def node_ring(node_id: str) -> str:
    return f"node:{{{node_id}}}:ring"


def user_sessions(user_id: str) -> str:
    return f"user:{{{user_id}}}:live"


class SessionKeys:
    """The names of one session's keys and channel (computed once per call site, cheap to build)."""

    __slots__ = ("channel", "fence", "inbox", "lease", "log", "meta", "session_id", "watchers")

    def __init__(self, session_id: str) -> None:
        base = f"sess:{{{session_id}}}"
        self.session_id = session_id
        self.meta = f"{base}:meta"
        self.log = f"{base}:log"
        self.lease = f"{base}:lease"
        self.fence = f"{base}:fence"
        self.inbox = f"{base}:inbox"
        self.channel = f"{base}:ev"
        self.watchers = f"{base}:watch"

    def deleted(self) -> list[str]:
        """The keys a delete removes: all but the fence (its tokens keep increasing across a re-create)."""
        return [self.meta, self.log, self.inbox, self.watchers]
