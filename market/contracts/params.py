"""Genesis parameters and stored values shared by the market contracts: addresses
(EIP-55 checked), amounts (JSON integers or decimal / 0x strings) and the uint256 bound."""
from __future__ import annotations

from vm.types import Address

UINT256_MAX = 2**256 - 1


def parse_address(value, what: str) -> Address:
    """A genesis address: 0x and 40 hex digits; mixed case must be a valid EIP-55 checksum."""
    if not isinstance(value, str):
        raise ValueError(f"{what}: expected an address string, got {value!r}")
    try:
        address = Address.from_hex(value)
    except ValueError:
        raise ValueError(f"{what}: not an address (0x and 40 hex digits): {value!r}") from None
    body = value[2:] if value[:2] in ("0x", "0X") else value
    if body != body.lower() and body != body.upper() and address.to_checksum() != "0x" + body:
        raise ValueError(f"{what}: bad EIP-55 checksum in {value!r} (expected {address.to_checksum()})")
    return address


def as_address(value) -> Address:
    """An address as storage or eth_abi hands it back (checksummed str or 20 bytes)."""
    return Address.from_hex(value) if isinstance(value, str) else Address(bytes(value))


def parse_amount(value, what: str, maximum: int = UINT256_MAX) -> int:
    """A genesis amount: a JSON integer or a decimal / 0x-hex string, 0 <= amount <= maximum."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected an integer amount, got {value!r}")
    if isinstance(value, int):
        amount = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            amount = int(text, 16) if text[:2] in ("0x", "0X") else int(text, 10)
        except ValueError:
            raise ValueError(f"{what}: not an integer amount: {value!r}") from None
        if "_" in text:
            raise ValueError(f"{what}: not an integer amount: {value!r}")
    else:
        raise ValueError(f"{what}: expected an integer amount, got {value!r}")
    if not 0 <= amount <= maximum:
        raise ValueError(f"{what}: {amount} is outside 0..{maximum}")
    return amount
