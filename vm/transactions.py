"""Signed Ethereum transactions: legacy with EIP-155 replay protection, EIP-2930
(type 1) and EIP-1559 (type 2), decoded from their canonical RLP envelopes.

The fee fields are normalised into `max_fee_per_gas` / `max_priority_fee_per_gas`
so the rest of the vm treats every type alike (a legacy gas price is both)."""
from __future__ import annotations

from dataclasses import dataclass, field

import rlp
from rlp.sedes import big_endian_int

from vm.crypto import InvalidSignature, keccak256, recover_address
from vm.types import Address, Hash32

MAX_TRANSACTION_SIZE = 128 * 1024
"""Same bound as go-ethereum's txpool: larger transactions are refused as oversized."""

LEGACY, ACCESS_LIST, DYNAMIC_FEE = 0, 1, 2


class InvalidTransaction(ValueError):
    """The bytes are not a well-formed, correctly signed transaction."""


@dataclass(frozen=True)
class Transaction:
    """A decoded, signature-checked transaction. `raw` is the exact envelope
    that was signed and is what blocks store and hash."""

    tx_type: int
    chain_id: int | None
    nonce: int
    max_priority_fee_per_gas: int
    max_fee_per_gas: int
    gas: int
    to: Address | None
    value: int
    data: bytes
    access_list: tuple
    v: int
    r: int
    s: int
    sender: Address
    hash: Hash32
    raw: bytes = field(repr=False)

    @property
    def gas_price(self) -> int:
        """The legacy gas price (for typed transactions the fee cap, as JSON-RPC shows it)."""
        return self.max_fee_per_gas

    def effective_gas_price(self, base_fee: int) -> int:
        return min(self.max_fee_per_gas, base_fee + self.max_priority_fee_per_gas)

    def effective_tip(self, base_fee: int) -> int:
        return self.effective_gas_price(base_fee) - base_fee


def _int(item: bytes, name: str) -> int:
    if not isinstance(item, bytes):
        raise InvalidTransaction(f"{name} must be a byte string")
    try:
        return big_endian_int.deserialize(item)
    except rlp.DeserializationError as exc:
        raise InvalidTransaction(f"{name} is not a canonical integer") from exc


def _bytes(item: bytes, name: str) -> bytes:
    if not isinstance(item, bytes):
        raise InvalidTransaction(f"{name} must be a byte string")
    return item


def _to(item: bytes) -> Address | None:
    item = _bytes(item, "to")
    if item == b"":
        return None
    if len(item) != 20:
        raise InvalidTransaction("to must be empty or 20 bytes")
    return Address(item)


def _access_list(item) -> tuple:
    if not isinstance(item, list):
        raise InvalidTransaction("access list must be a list")
    entries = []
    for entry in item:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], bytes)
                and len(entry[0]) == 20 and isinstance(entry[1], list)
                and all(isinstance(key, bytes) and len(key) == 32 for key in entry[1])):
            raise InvalidTransaction("malformed access list entry")
        entries.append((Address(entry[0]), tuple(entry[1])))
    return tuple(entries)


def _decode_list(payload: bytes, expected: int, kind: str) -> list:
    try:
        items = rlp.decode(payload, strict=True)
    except rlp.DecodingError as exc:
        raise InvalidTransaction(f"malformed {kind} transaction RLP") from exc
    if not isinstance(items, list) or len(items) != expected:
        raise InvalidTransaction(f"{kind} transaction must have {expected} fields")
    return items


def _recover(signing_hash: bytes, y_parity: int, r: int, s: int) -> Address:
    try:
        return recover_address(signing_hash, y_parity, r, s)
    except InvalidSignature as exc:
        raise InvalidTransaction("invalid sender: invalid signature") from exc


def decode_transaction(raw: bytes) -> Transaction:
    """Decode and recover the sender of a raw transaction as sent to eth_sendRawTransaction."""
    if not raw:
        raise InvalidTransaction("empty transaction")
    if len(raw) > MAX_TRANSACTION_SIZE:
        raise InvalidTransaction(f"oversized data: transaction size {len(raw)}, limit {MAX_TRANSACTION_SIZE}")
    first = raw[0]
    if first >= 0xC0:
        return _decode_legacy(raw)
    if first == DYNAMIC_FEE:
        return _decode_typed(raw, DYNAMIC_FEE)
    if first == ACCESS_LIST:
        return _decode_typed(raw, ACCESS_LIST)
    raise InvalidTransaction("transaction type not supported")


def _decode_legacy(raw: bytes) -> Transaction:
    items = _decode_list(raw, 9, "legacy")
    nonce, gas_price, gas = (_int(items[i], n) for i, n in ((0, "nonce"), (1, "gasPrice"), (2, "gas")))
    to, value, data = _to(items[3]), _int(items[4], "value"), _bytes(items[5], "data")
    v, r, s = _int(items[6], "v"), _int(items[7], "r"), _int(items[8], "s")
    if v in (27, 28):
        raise InvalidTransaction("only replay-protected (EIP-155) transactions allowed over RPC")
    if v < 35:
        raise InvalidTransaction("invalid sender: invalid v value")
    chain_id, y_parity = (v - 35) // 2, (v - 35) % 2
    unsigned = rlp.encode(items[:6] + [chain_id, 0, 0])
    return Transaction(LEGACY, chain_id, nonce, gas_price, gas_price, gas, to, value, data, (), v, r, s,
                       _recover(keccak256(unsigned), y_parity, r, s), keccak256(raw), raw)


def _decode_typed(raw: bytes, tx_type: int) -> Transaction:
    if tx_type == DYNAMIC_FEE:
        items = _decode_list(raw[1:], 12, "EIP-1559")
        tip, fee_cap = _int(items[2], "maxPriorityFeePerGas"), _int(items[3], "maxFeePerGas")
        rest = items[4:]
    else:
        items = _decode_list(raw[1:], 11, "EIP-2930")
        tip = fee_cap = _int(items[2], "gasPrice")
        rest = items[3:]
    chain_id, nonce = _int(items[0], "chainId"), _int(items[1], "nonce")
    gas, to, value, data = _int(rest[0], "gas"), _to(rest[1]), _int(rest[2], "value"), _bytes(rest[3], "data")
    access_list = _access_list(rest[4])
    y_parity, r, s = _int(rest[5], "yParity"), _int(rest[6], "r"), _int(rest[7], "s")
    unsigned = bytes([tx_type]) + rlp.encode(items[:-3])
    return Transaction(tx_type, chain_id, nonce, tip, fee_cap, gas, to, value, data, access_list, y_parity, r, s,
                       _recover(keccak256(unsigned), y_parity, r, s), keccak256(raw), raw)
