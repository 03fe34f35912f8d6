"""Distinct byte and number types, so an address is never confused with a hash."""
from __future__ import annotations

from functools import lru_cache


class Address(bytes):
    """A 20-byte account address."""

    def __new__(cls, value: bytes) -> "Address":
        if len(value) != 20:
            raise ValueError(f"address must be 20 bytes, got {len(value)}")
        return super().__new__(cls, value)

    @classmethod
    def from_hex(cls, text: str) -> "Address":
        body = text[2:] if text[:2] in ("0x", "0X") else text
        if len(body) != 40:
            raise ValueError(f"address must be 40 hex digits: {text!r}")
        return cls(bytes.fromhex(body))

    def to_checksum(self) -> str:
        """EIP-55 mixed-case hex, the form wallets display."""
        return _checksum(bytes(self))


@lru_cache(maxsize=65536)
def _checksum(raw: bytes) -> str:
    from vm.crypto import keccak256

    lower = raw.hex()
    digest = keccak256(lower.encode()).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(lower))


class Hash32(bytes):
    """A 32-byte keccak-256 digest."""

    def __new__(cls, value: bytes) -> "Hash32":
        if len(value) != 32:
            raise ValueError(f"hash must be 32 bytes, got {len(value)}")
        return super().__new__(cls, value)


ZERO_ADDRESS = Address(b"\x00" * 20)
ZERO_HASH = Hash32(b"\x00" * 32)
