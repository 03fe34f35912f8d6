"""Strict RLP decoding for bytes from elsewhere: one canonical form, bounded
nesting, and no exception but `MalformedRLP`.

pyrlp's `rlp.decode` recurses once per nesting level, so deep input ends in a
RecursionError rather than a DecodingError, and it copies each list's encoding
as it goes. Every gridnode object is at most `MAX_RLP_DEPTH` lists deep, so
this decoder refuses deeper input at the first list past that depth, and costs
one pass over the bytes. Canonical means what Ethereum's RLP means: the
shortest length prefix, no single byte below 0x80 wrapped as a string, no
leading zero bytes in lengths or integers, nothing after the item. Then
re-encoding a decoded object gives back exactly the bytes it came from."""
from __future__ import annotations

from rlp.codec import encode_raw

from vm.limits import MAX_RLP_DEPTH, MAX_UINT_BYTES

Item = bytes | list
"""A decoded RLP item: a byte string, or a list of items."""


class MalformedRLP(ValueError):
    """Bytes that are not one canonical RLP item of the expected shape; the message says why."""


def decode(data: bytes, max_depth: int = MAX_RLP_DEPTH) -> Item:
    """The one item `data` encodes, with lists nested at most `max_depth` deep."""
    if not isinstance(data, bytes):
        raise MalformedRLP(f"expected bytes, got {type(data).__name__}")
    item, end = _item(data, 0, len(data), max_depth)
    if end != len(data):
        raise MalformedRLP(f"{len(data) - end} bytes after the RLP item")
    return item


def _item(data: bytes, start: int, limit: int, depth: int) -> tuple[Item, int]:
    """The item at `start`, which must end by `limit`, and where it ends."""
    if start >= limit:
        raise MalformedRLP("input ends where an item should start")
    first = data[start]
    if first < 0x80:
        return data[start:start + 1], start + 1
    if first < 0xB8:
        is_list, length, offset = False, first - 0x80, start + 1
    elif first < 0xC0:
        is_list, (length, offset) = False, _long_length(data, start, first - 0xB7, limit)
    elif first < 0xF8:
        is_list, length, offset = True, first - 0xC0, start + 1
    else:
        is_list, (length, offset) = True, _long_length(data, start, first - 0xF7, limit)
    end = offset + length
    if end > limit:
        raise MalformedRLP(f"item of {length} bytes runs past the end of its container")
    if not is_list:
        if length == 1 and data[offset] < 0x80:
            raise MalformedRLP("non-canonical: a single byte below 0x80 encoded as a string")
        return data[offset:end], end
    if depth == 0:
        raise MalformedRLP("lists nested too deep")
    items, position = [], offset
    while position < end:
        item, position = _item(data, position, end, depth - 1)
        items.append(item)
    return items, end


def _long_length(data: bytes, start: int, size: int, limit: int) -> tuple[int, int]:
    """The length in the `size` bytes after a long-form prefix, and where the payload starts."""
    offset = start + 1 + size
    if offset > limit:
        raise MalformedRLP("input ends inside a length prefix")
    if data[start + 1] == 0:
        raise MalformedRLP("non-canonical: length with leading zero bytes")
    length = int.from_bytes(data[start + 1:offset], "big")
    if length < 56:
        raise MalformedRLP("non-canonical: long length prefix for a short item")
    return length, offset


def encode(item) -> bytes:
    """What `rlp.encode` gives for byte strings, non-negative integers and lists or tuples of
    them, without its serializer inference (sedes), which was 60 % of its cost on the paths
    every transaction takes (signing hashes, receipts, undo records): integers become their
    minimal big-endian bytes, then pyrlp's raw encoder runs."""
    return encode_raw(_raw(item))


def _raw(item):
    if isinstance(item, bytes):
        return item
    if isinstance(item, int):
        if item < 0:
            raise ValueError(f"RLP encodes non-negative integers only, not {item}")
        return item.to_bytes((item.bit_length() + 7) // 8, "big")
    if isinstance(item, (list, tuple)):
        return [_raw(element) for element in item]
    raise TypeError(f"cannot RLP-encode {type(item).__name__}")


# -- typed fields ---------------------------------------------------------------
def fields(item: Item, count: int, what: str) -> list:
    """A list of exactly `count` items."""
    if not isinstance(item, list):
        raise MalformedRLP(f"{what} must be a list")
    if len(item) != count:
        raise MalformedRLP(f"{what} must have {count} fields, got {len(item)}")
    return item


def uint(item: Item, name: str, max_bytes: int = MAX_UINT_BYTES) -> int:
    """A canonical unsigned integer of at most `max_bytes` bytes (zero is the empty string)."""
    value = string(item, name)
    if value[:1] == b"\x00":
        raise MalformedRLP(f"{name} is not a canonical integer (leading zero bytes)")
    if len(value) > max_bytes:
        raise MalformedRLP(f"{name} exceeds {8 * max_bytes} bits")
    return int.from_bytes(value, "big")


def string(item: Item, name: str, *, length: int | None = None, max_length: int | None = None) -> bytes:
    """A byte string, of exactly `length` or at most `max_length` bytes when given."""
    if not isinstance(item, bytes):
        raise MalformedRLP(f"{name} must be a byte string, not a list")
    if length is not None and len(item) != length:
        raise MalformedRLP(f"{name} must be {length} bytes, got {len(item)}")
    if max_length is not None and len(item) > max_length:
        raise MalformedRLP(f"{name} of {len(item)} bytes exceeds {max_length}")
    return item


def strings(item: Item, name: str, *, length: int | None = None) -> list[bytes]:
    """A list of byte strings (each of exactly `length` bytes when given)."""
    if not isinstance(item, list):
        raise MalformedRLP(f"{name} must be a list")
    return [string(element, f"{name} item", length=length) for element in item]
