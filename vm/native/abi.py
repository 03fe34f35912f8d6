"""ABI encoding for the calls, events and storage of native contracts: eth_abi, with a
direct path for the static types a market moves most (uintN, bool, address, bytes32).

The direct path produces and accepts exactly what eth_abi does (checked against it by
tests/market/test_abi_codec.py); anything else - a dynamic type, a value of an
unexpected Python type - goes to eth_abi, which raises its own errors. A token
transfer decodes and encodes a dozen values, and eth_abi's generic machinery costs
most of the transfer's time without this path."""
from __future__ import annotations

import functools
import re

import eth_abi
from eth_abi.exceptions import DecodingError, InsufficientDataBytes, NonEmptyPaddingBytes

WORD = 32
_HEX_ADDRESS = re.compile(r"0[xX][0-9a-fA-F]{40}")


@functools.lru_cache(maxsize=256)
def _uint_bits(abi_type: str) -> int | None:
    if abi_type.startswith("uint") and abi_type[4:].isdigit():
        return int(abi_type[4:])
    return None


@functools.lru_cache(maxsize=256)
def _simple(abi_type: str) -> bool:
    return abi_type in ("bool", "address", "bytes32") or _uint_bits(abi_type) is not None


def _encode_one(abi_type: str, value) -> bytes | None:
    """The word for `value`, or None to let eth_abi handle (and judge) it."""
    if abi_type == "address":
        if isinstance(value, str) and _HEX_ADDRESS.fullmatch(value):
            return bytes(12) + bytes.fromhex(value[2:])
        if isinstance(value, (bytes, bytearray)) and len(value) == 20:
            return bytes(12) + bytes(value)
        return None
    if abi_type == "bool":
        return (b"\x00" * 31 + (b"\x01" if value else b"\x00")) if isinstance(value, bool) else None
    if abi_type == "bytes32":
        return bytes(value) if isinstance(value, (bytes, bytearray)) and len(value) == WORD else None
    bits = _uint_bits(abi_type)
    if bits is not None and isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << bits:
        return value.to_bytes(WORD, "big")
    return None


def encode(types: list[str] | tuple[str, ...], values) -> bytes:
    values = list(values)
    if len(types) == len(values):
        words = []
        for abi_type, value in zip(types, values):
            word = _encode_one(abi_type, value) if _simple(abi_type) else None
            if word is None:
                break
            words.append(word)
        else:
            return b"".join(words)
    return eth_abi.encode(list(types), values)


def _decode_one(abi_type: str, word: bytes):
    if abi_type == "bytes32":
        return word
    if abi_type == "address":
        if any(word[:12]):
            raise NonEmptyPaddingBytes(f"Padding bytes were not empty: {word[:12]!r}")
        return "0x" + word[12:].hex()
    value = int.from_bytes(word, "big")
    if abi_type == "bool":
        if value > 1:
            raise NonEmptyPaddingBytes(f"Boolean must be either 0x0 or 0x1.  Got: {word[-1:]!r}")
        return bool(value)
    if value >> _uint_bits(abi_type):
        raise NonEmptyPaddingBytes("Padding bytes were not empty")
    return value


def decode(types: list[str] | tuple[str, ...], data: bytes) -> tuple:
    """Raises an eth_abi DecodingError subclass on malformed data, as eth_abi does."""
    if all(_simple(t) for t in types):
        if len(data) < WORD * len(types):
            raise InsufficientDataBytes(f"Tried to read {WORD * len(types)} bytes, only got {len(data)} bytes.")
        return tuple(_decode_one(t, data[i * WORD:(i + 1) * WORD]) for i, t in enumerate(types))
    return tuple(eth_abi.decode(list(types), data))


__all__ = ["DecodingError", "decode", "encode"]
