"""Socket.IO packet encoding and decoding, for both ends of a connection.

Owns: the choice of packet class (python-socketio's ``Packet`` for the default text serializer,
``MsgPackPacket`` for msgpack), decoding one Engine.IO message into a packet, and encoding outgoing packets
into the list of Engine.IO messages that carry them. The hot path -- an EVENT or ACK without binary
attachments -- has a fast encoder that produces exactly the bytes python-socketio's ``Packet.encode`` does
(the tests check it byte for byte) but skips its recursive binary scan: the JSON encoder itself rejects
``bytes``, and only then do we fall back to the library.

Knows nothing of connections, namespaces' state, rooms or trio, nor of which end it encodes for: a client's
EVENT or ACK is the same packet as a server's.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from socketio import packet as _packet
from socketio.msgpack_packet import MsgPackPacket
from socketio.packet import Packet

CONNECT = _packet.CONNECT
DISCONNECT = _packet.DISCONNECT
EVENT = _packet.EVENT
ACK = _packet.ACK
CONNECT_ERROR = _packet.CONNECT_ERROR
BINARY_EVENT = _packet.BINARY_EVENT
BINARY_ACK = _packet.BINARY_ACK

EngineMessage = str | bytes
Serializer = Literal["default", "msgpack"] | type[Packet]

# The same JSON python-socketio writes (``json.dumps(data, separators=(",", ":"))``), with the encoder built
# once instead of once per call.
_json_encode = json.JSONEncoder(separators=(",", ":")).encode
_LIBRARY_JSON = Packet.json  # engineio.json: json.loads with a bounded parse_int, a decoder built per call


def _safe_int(s: str) -> int:  # as engineio.json's
    if len(s) > 100:
        raise ValueError("Integer is too large")
    return int(s)


_json_decode = json.JSONDecoder(parse_int=_safe_int).decode


def packet_class_for(serializer: Serializer) -> type[Packet]:
    """The packet class for a ``serializer`` option, as python-socketio's ``Server(serializer=...)``."""
    if serializer == "default":
        return Packet
    if serializer == "msgpack":
        return MsgPackPacket
    if isinstance(serializer, type) and issubclass(serializer, Packet):
        return serializer
    raise ValueError(f"unknown serializer {serializer!r}: use 'default', 'msgpack' or a Packet subclass")


def is_text_packet_class(packet_class: type[Packet]) -> bool:
    """True when packets travel as text with binary attachments (the default serializer)."""
    return packet_class.uses_binary_events


def args_from_data(data: Any) -> list[Any]:
    """python-socketio's ``emit(data=...)`` convention (and its rule for a handler's return value as ACK
    arguments): None -> no argument, a tuple -> several arguments, anything else -> one."""
    if data is None:
        return []
    if isinstance(data, tuple):
        return list(data)
    return [data]


def _normalize(encoded: Any) -> list[EngineMessage]:
    if isinstance(encoded, list):
        return [m if isinstance(m, str | bytes) else bytes(m) for m in encoded]
    return [encoded]


def encode_library(
    packet_class: type[Packet],
    packet_type: int,
    namespace: str,
    data: Any = None,
    ack_id: int | None = None,
    *,
    binary: bool | None = None,
) -> list[EngineMessage]:
    """Encode with the library (the reference encoding); one or more Engine.IO messages."""
    pkt = packet_class(packet_type, data=data, namespace=namespace, id=ack_id, binary=binary)
    return _normalize(pkt.encode())


def _fast_text(packet_type: int, namespace: str, ack_id: int | None, data: list[Any]) -> str:
    # Mirrors Packet.encode for a packet without attachments: type, "nsp," unless "/", id, JSON.
    head = str(packet_type)
    if namespace != "/":
        head += namespace + ","
    if ack_id is not None:
        head += str(ack_id)
    return head + _json_encode(data)


def encode_event(
    packet_class: type[Packet],
    namespace: str,
    event: str | int,
    args: list[Any],
    ack_id: int | None = None,
) -> list[EngineMessage]:
    """EVENT (or BINARY_EVENT when ``args`` hold bytes) as Engine.IO messages."""
    data = [event, *args]
    if packet_class is Packet:
        try:
            return [_fast_text(EVENT, namespace, ack_id, data)]
        except TypeError:
            pass  # bytes somewhere (or something JSON cannot encode): the library decides
    return encode_library(packet_class, EVENT, namespace, data, ack_id)


_EVENT_HEADS: dict[tuple[str, str], str] = {}  # (namespace, event name) -> the text before the argument


def _event_head(namespace: str, event: str | int) -> str:
    return ("2" if namespace == "/" else "2" + namespace + ",") + "[" + _json_encode(event) + ","


def encode_event_json(namespace: str, event: str | int, json_text: str) -> list[EngineMessage]:
    """EVENT with one argument already encoded as JSON text (text serializer only, never binary)."""
    if type(event) is not str:  # (an int: True == 1 as a key, but not as JSON)
        return [_event_head(namespace, event) + json_text + "]"]
    head = _EVENT_HEADS.get((namespace, event))
    if head is None:
        head = _event_head(namespace, event)
        if len(_EVENT_HEADS) < 256:  # the server's own few names; bounded whatever it emits
            _EVENT_HEADS[(namespace, event)] = head
    return [head + json_text + "]"]


def encode_ack(
    packet_class: type[Packet], namespace: str, ack_id: int, args: list[Any]
) -> list[EngineMessage]:
    """ACK (or BINARY_ACK) carrying ``args`` for the client's packet ``ack_id``."""
    if packet_class is Packet:
        try:
            return [_fast_text(ACK, namespace, ack_id, args)]
        except TypeError:
            pass
    return encode_library(packet_class, ACK, namespace, args, ack_id)


def encode_connect(
    packet_class: type[Packet], namespace: str, payload: dict[str, Any] | None
) -> list[EngineMessage]:
    """CONNECT: a client's request (``payload`` its auth, or None) or a server's reply ``{"sid": ...}``."""
    return encode_library(packet_class, CONNECT, namespace, payload, binary=False)


def encode_connect_error(
    packet_class: type[Packet], namespace: str, payload: dict[str, Any]
) -> list[EngineMessage]:
    try:
        return encode_library(packet_class, CONNECT_ERROR, namespace, payload, binary=False)
    except (TypeError, ValueError):
        # The application's refusal data cannot be serialized: still refuse, with the message alone.
        message = str(payload.get("message", "Connection refused by server"))
        return encode_library(packet_class, CONNECT_ERROR, namespace, {"message": message}, binary=False)


def encode_disconnect(packet_class: type[Packet], namespace: str, data: Any = None) -> list[EngineMessage]:
    try:
        return encode_library(packet_class, DISCONNECT, namespace, data, binary=False)
    except (TypeError, ValueError):
        return encode_library(packet_class, DISCONNECT, namespace, None, binary=False)


def decode(packet_class: type[Packet], message: EngineMessage) -> Packet:
    """Decode one Engine.IO message into a packet; any malformation raises ``ValueError``.

    For the text serializer this is the header packet (its ``attachment_count`` says how many binary
    messages follow). The library raises many exception types on garbage; they all become ValueError.
    """
    if is_text_packet_class(packet_class):
        if not isinstance(message, str):
            raise ValueError("binary message where a text packet was expected")
    elif not isinstance(message, bytes):
        raise ValueError("text message with the msgpack serializer")
    if not message:
        raise ValueError("empty packet")
    try:
        if packet_class is Packet and Packet.json is _LIBRARY_JSON:
            pkt = _decode_text(message)  # type: ignore[arg-type]
        else:
            pkt = packet_class(encoded_packet=message)
    except Exception as exc:  # the library's decoders raise whatever their parser hits
        raise ValueError(f"undecodable packet: {exc}") from None
    if not isinstance(pkt.packet_type, int) or isinstance(pkt.packet_type, bool):
        raise ValueError("packet type is not an integer")
    if pkt.namespace is None:
        pkt.namespace = "/"
    elif not isinstance(pkt.namespace, str) or not pkt.namespace.startswith("/"):
        raise ValueError("invalid namespace")
    if pkt.id is not None and (not isinstance(pkt.id, int) or isinstance(pkt.id, bool) or pkt.id < 0):
        raise ValueError("invalid ack id")
    return pkt


def _decode_text(ep: str) -> Packet:
    """``Packet(encoded_packet=ep)`` for a non-empty text message, step for step what the library's
    ``Packet.decode`` does (same attributes, same exceptions), with the JSON decoder built once."""
    pkt: Packet = Packet.__new__(Packet)
    pkt.packet_type = int(ep[0:1])
    pkt.data = None
    pkt.namespace = None
    pkt.id = None
    pkt.attachments = []
    ep = ep[1:]
    attachment_count = 0
    dash = ep.find("-")
    if dash > 0 and ep[0:dash].isdigit():
        if dash > 10:
            raise ValueError("too many attachments")
        attachment_count = int(ep[0:dash])
        ep = ep[dash + 1 :]
    if ep and ep[0:1] == "/":
        sep = ep.find(",")
        if sep == -1:
            namespace = ep
            ep = ""
        else:
            namespace = ep[0:sep]
            ep = ep[sep + 1 :]
        q = namespace.find("?")
        pkt.namespace = namespace if q == -1 else namespace[0:q]
    if ep and ep[0].isdigit():
        i = 1
        end = len(ep)
        while i < end:
            if not ep[i].isdigit() or i >= 100:
                break
            i += 1
        pkt.id = int(ep[:i])
        ep = ep[i:]
        if len(ep) > 0 and ep[0].isdigit():
            raise ValueError("id field is too long")
    if ep:
        if ep.startswith("\ufeff"):  # as json.loads
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", ep, 0)
        pkt.data = _json_decode(ep)
    pkt.attachment_count = attachment_count
    return pkt
