"""Event handler registration and lookup, with python-socketio's rules.

Owns: the ``@sio.on`` / ``@sio.event`` registry, the resolution order of handlers (exact namespace and
event, then the namespace's catch-all ``"*"`` event, then the catch-all ``"*"`` namespace), the arguments a
catch-all handler gets, and calling a handler that may be sync or async. ``connect`` handlers may take
``(sid, environ)`` or ``(sid, environ, auth)``, ``disconnect`` handlers ``(sid)`` or ``(sid, reason)``: the
signature is inspected instead of retrying on ``TypeError`` (which would also swallow a TypeError raised
inside the handler).

Knows nothing of sockets, packets or trio.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: Events the catch-all ``"*"`` handler never receives.
SPECIAL_EVENTS = frozenset({"connect", "disconnect"})


class _NotHandled:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_HANDLED"


NOT_HANDLED: Any = _NotHandled()


def _max_positional(handler: Callable[..., Any]) -> int | None:
    """How many positional arguments ``handler`` takes (None: any number)."""
    try:
        params = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for param in params:
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if param.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


async def invoke(handler: Callable[..., Any], *args: Any) -> Any:
    """Call a sync or async handler."""
    result = handler(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class HandlerRegistry:
    __slots__ = ("_arity", "_handlers")

    def __init__(self) -> None:
        self._handlers: dict[str, dict[Any, Callable[..., Any]]] = {}
        # connect/disconnect handler -> how many positional arguments it takes (inspect.signature costs
        # ~10 us: it was 6% of a connect). Holds only registered handlers; emptied if they were many.
        self._arity: dict[Callable[..., Any], int | None] = {}

    def on(
        self, event: str, handler: Callable[..., Any] | None = None, namespace: str | None = None
    ) -> Callable[[F], F] | None:
        namespace = namespace or "/"

        def set_handler(func: F) -> F:
            self._handlers.setdefault(namespace, {})[event] = func
            return func

        if handler is None:
            return set_handler
        set_handler(handler)
        return None

    def namespaces(self) -> set[str]:
        """Namespaces with at least one handler (``"*"`` included if registered)."""
        return set(self._handlers)

    def resolve(
        self, event: Any, namespace: str, args: tuple[Any, ...]
    ) -> tuple[Callable[..., Any] | None, tuple[Any, ...]]:
        """The handler for ``event`` in ``namespace`` and the arguments to call it with."""
        special = event in SPECIAL_EVENTS
        handlers = self._handlers.get(namespace)
        if handlers is not None:
            handler = handlers.get(event)
            if handler is not None:
                return handler, args
            if not special and "*" in handlers:
                return handlers["*"], (event, *args)
        handlers = self._handlers.get("*")
        if handlers is not None:
            handler = handlers.get(event)
            if handler is not None:
                return handler, (namespace, *args)
            if not special and "*" in handlers:
                return handlers["*"], (event, namespace, *args)
        return None, args

    def has(self, event: Any, namespace: str) -> bool:
        return self.resolve(event, namespace, ())[0] is not None

    async def trigger(self, event: Any, namespace: str, *args: Any) -> Any:
        """Run the handler for an application event; ``NOT_HANDLED`` if there is none."""
        handler, call_args = self.resolve(event, namespace, args)
        if handler is None:
            return NOT_HANDLED
        return await invoke(handler, *call_args)

    async def trigger_trimmed(self, event: str, namespace: str, *args: Any) -> Any:
        """Run ``connect`` / ``disconnect``, dropping trailing optional arguments (``auth``, ``reason``)
        that the handler's signature does not take."""
        handler, call_args = self.resolve(event, namespace, args)
        if handler is None:
            return NOT_HANDLED
        arity = self._arity
        if handler in arity:
            limit = arity[handler]
        else:
            if len(arity) >= 256:
                arity.clear()
            limit = arity[handler] = _max_positional(handler)
        if limit is not None and len(call_args) > limit:
            call_args = call_args[:limit]
        return await invoke(handler, *call_args)
