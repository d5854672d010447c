"""The protobuf wire-format reader the contract servers decode requests with.

Written from the encoding spec (protobuf.dev/programming-guides/encoding),
with no code shared with confluo, so that a contract server checks the
exporter's encoding independently. Standard library only: the servers run on
different venvs. A sibling script imports it as `import protowire` (Python
puts the script's folder first on sys.path).
"""

from __future__ import annotations


class Invalid(Exception):
    """A request that breaks the contract; the servers answer 400 with it."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos`: (value, position after it)."""
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise Invalid("protobuf: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise Invalid("protobuf: varint too long")


def fields(buf: bytes):
    """Yields (field number, wire type, value) of one message: an int for a
    varint, the little-endian bytes of a fixed64 / fixed32, the payload of a
    length-delimited field."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise Invalid("protobuf: field number 0")
        if wt == 0:
            value, pos = read_varint(buf, pos)
        elif wt in (1, 5):
            size = 8 if wt == 1 else 4
            if pos + size > len(buf):
                raise Invalid(f"protobuf: truncated fixed{size * 8}")
            value = buf[pos : pos + size]
            pos += size
        elif wt == 2:
            n, pos = read_varint(buf, pos)
            if pos + n > len(buf):
                raise Invalid("protobuf: truncated length-delimited field")
            value = buf[pos : pos + n]
            pos += n
        else:
            raise Invalid(f"protobuf: unsupported wire type {wt}")
        yield num, wt, value


def wire_type(wt: int, want: int, what: str) -> None:
    """Checks that field `what` came with the wire type its .proto gives it."""
    if wt != want:
        raise Invalid(f"protobuf: {what} has wire type {wt}, the proto says {want}")


def utf8(b: bytes, what: str) -> str:
    """A `string` field's text; protobuf strings must be UTF-8."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Invalid(f"protobuf: {what} is not UTF-8: {e}") from None


def signed(v: int, bits: int = 64) -> int:
    """A two's-complement intN read as a varint → its signed value."""
    return v - (1 << bits) if v >= 1 << (bits - 1) else v
