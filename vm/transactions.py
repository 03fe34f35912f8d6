"""Signed Ethereum transactions: legacy with EIP-155 replay protection, EIP-2930
(type 1) and EIP-1559 (type 2), decoded from their canonical RLP envelopes.

The fee fields are normalised into `max_fee_per_gas` / `max_priority_fee_per_gas`
so the rest of the vm treats every type alike (a legacy gas price is both)."""
from __future__ import annotations

from dataclasses import dataclass, field


from vm import codec
from vm.crypto import InvalidSignature, keccak256, recover_address, sign
from vm.limits import MAX_TRANSACTION_SIZE
from vm.types import Address, Hash32

MAX_UINT64_BYTES = 8
"""Nonce and gas are 64-bit, as go-ethereum decodes them (EIP-2681 for the nonce)."""

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


def _to(item) -> Address | None:
    to = codec.string(item, "to")
    if to == b"":
        return None
    if len(to) != 20:
        raise codec.MalformedRLP("to must be empty or 20 bytes")
    return Address(to)


def _access_list(item) -> tuple:
    if not isinstance(item, list):
        raise codec.MalformedRLP("access list must be a list")
    entries = []
    for entry in item:
        address, keys = codec.fields(entry, 2, "access list entry")
        entries.append((Address(codec.string(address, "access list address", length=20)),
                        tuple(codec.strings(keys, "storage keys", length=32))))
    return tuple(entries)


@dataclass(frozen=True)
class _Envelope:
    """A transaction's fields, checked for structure and range, before its sender is known."""

    fields: tuple
    """`Transaction`'s fields from `tx_type` to `s`."""
    unsigned: bytes
    """What the sender signed: keccak of this is the signing hash."""
    y_parity: int


def decode_transaction(raw: bytes) -> Transaction:
    """Decode and recover the sender of a raw transaction as sent to eth_sendRawTransaction.
    Anything malformed or wrongly signed is an InvalidTransaction."""
    envelope = _parse(raw)
    *_, r, s = envelope.fields
    try:
        sender = recover_address(keccak256(envelope.unsigned), envelope.y_parity, r, s)
    except InvalidSignature as exc:
        raise InvalidTransaction("invalid sender: invalid signature") from exc
    return Transaction(*envelope.fields, sender, keccak256(raw), raw)


def check_structure(raw: bytes) -> None:
    """Raise InvalidTransaction unless `raw` is a well-formed envelope, without the costly
    part (recovering the sender), so a block's malformed transactions are found before
    any signature work is done."""
    _parse(raw)


def _parse(raw: bytes) -> _Envelope:
    """Cheap checks first: the size, then the envelope's structure and each field's type and range."""
    if not raw:
        raise InvalidTransaction("empty transaction")
    if len(raw) > MAX_TRANSACTION_SIZE:
        raise InvalidTransaction(f"oversized data: transaction size {len(raw)}, limit {MAX_TRANSACTION_SIZE}")
    try:
        if raw[0] >= 0xC0:
            return _parse_legacy(raw)
        if raw[0] in (ACCESS_LIST, DYNAMIC_FEE):
            return _parse_typed(raw, raw[0])
    except codec.MalformedRLP as exc:
        raise InvalidTransaction(f"malformed transaction: {exc}") from None
    raise InvalidTransaction("transaction type not supported")


def sign_legacy(chain_id: int, nonce: int, gas_price: int, gas: int, to: Address, value: int, data: bytes,
                private_key: bytes) -> bytes:
    """A signed EIP-155 legacy envelope: for transactions a node makes itself (an engine's
    settlement), which wallets would otherwise sign."""
    fields = [nonce, gas_price, gas, bytes(to), value, data]
    y_parity, r, s = sign(keccak256(codec.encode(fields + [chain_id, 0, 0])), private_key)
    return codec.encode(fields + [chain_id * 2 + 35 + y_parity, r, s])


def _parse_legacy(raw: bytes) -> _Envelope:
    items = codec.fields(codec.decode(raw), 9, "legacy transaction")
    nonce, gas_price = codec.uint(items[0], "nonce", MAX_UINT64_BYTES), codec.uint(items[1], "gasPrice")
    gas, to = codec.uint(items[2], "gas", MAX_UINT64_BYTES), _to(items[3])
    value, data = codec.uint(items[4], "value"), codec.string(items[5], "data")
    v, r, s = codec.uint(items[6], "v"), codec.uint(items[7], "r"), codec.uint(items[8], "s")
    if v in (27, 28):
        raise InvalidTransaction("only replay-protected (EIP-155) transactions allowed over RPC")
    if v < 35:
        raise InvalidTransaction("invalid sender: invalid v value")
    chain_id, y_parity = (v - 35) // 2, (v - 35) % 2
    return _Envelope((LEGACY, chain_id, nonce, gas_price, gas_price, gas, to, value, data, (), v, r, s),
                     codec.encode(items[:6] + [chain_id, 0, 0]), y_parity)


def _parse_typed(raw: bytes, tx_type: int) -> _Envelope:
    payload = codec.decode(raw[1:])
    if tx_type == DYNAMIC_FEE:
        items = codec.fields(payload, 12, "EIP-1559 transaction")
        tip, fee_cap = codec.uint(items[2], "maxPriorityFeePerGas"), codec.uint(items[3], "maxFeePerGas")
        rest = items[4:]
    else:
        items = codec.fields(payload, 11, "EIP-2930 transaction")
        tip = fee_cap = codec.uint(items[2], "gasPrice")
        rest = items[3:]
    chain_id, nonce = codec.uint(items[0], "chainId"), codec.uint(items[1], "nonce", MAX_UINT64_BYTES)
    gas, to = codec.uint(rest[0], "gas", MAX_UINT64_BYTES), _to(rest[1])
    value, data = codec.uint(rest[2], "value"), codec.string(rest[3], "data")
    access_list = _access_list(rest[4])
    y_parity, r, s = codec.uint(rest[5], "yParity"), codec.uint(rest[6], "r"), codec.uint(rest[7], "s")
    return _Envelope((tx_type, chain_id, nonce, tip, fee_cap, gas, to, value, data, access_list, y_parity, r, s),
                     bytes([tx_type]) + codec.encode(items[:-3]), y_parity)
