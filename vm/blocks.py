"""Headers, blocks, logs and receipts with their one canonical RLP encoding."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import rlp
from eth_bloom import BloomFilter

from vm.crypto import keccak256
from vm.types import Address, Hash32


class InvalidBlock(Exception):
    """A block that breaks a rule; nothing of it is stored and the reason says which rule."""


@dataclass(frozen=True)
class Header:
    parent_hash: Hash32
    number: int
    timestamp: int
    """Seconds since the Unix epoch, set by the producer; the state transition never reads a clock."""
    producer: Address
    """Who made the block and receives its fees (`miner` in JSON-RPC)."""
    state_root: Hash32
    transactions_root: Hash32
    receipts_root: Hash32
    logs_bloom: bytes
    gas_limit: int
    gas_used: int
    base_fee: int
    difficulty: int
    """The engine's fork-choice weight of this block (PoA: 2 in turn, 1 out of turn; PoW: work)."""
    extra_data: bytes = b""
    seal: bytes = b""
    """Engine seal data (PoA: the signer's signature over `seal_hash`; PoW: the nonce)."""

    def _fields(self) -> list:
        return [self.parent_hash, self.number, self.timestamp, self.producer, self.state_root,
                self.transactions_root, self.receipts_root, self.logs_bloom, self.gas_limit,
                self.gas_used, self.base_fee, self.difficulty, self.extra_data]

    def encode(self) -> bytes:
        return rlp.encode(self._fields() + [self.seal])

    @property
    def hash(self) -> Hash32:
        return _cached(self, "_hash", lambda: keccak256(self.encode()))

    @property
    def seal_hash(self) -> Hash32:
        """Hash of everything but the seal: what a PoA signer signs and PoW grinds on."""
        return _cached(self, "_seal_hash", lambda: keccak256(rlp.encode(self._fields())))

    def with_seal(self, seal: bytes) -> "Header":
        return replace(self, seal=seal)

    @classmethod
    def decode(cls, data: bytes) -> "Header":
        items = rlp.decode(data, strict=True)
        if not isinstance(items, list) or len(items) != 14:
            raise ValueError("header must have 14 fields")
        ints = [int.from_bytes(items[i], "big") for i in (1, 2, 8, 9, 10, 11)]
        return cls(Hash32(items[0]), ints[0], ints[1], Address(items[3]), Hash32(items[4]), Hash32(items[5]),
                   Hash32(items[6]), items[7], ints[2], ints[3], ints[4], ints[5], items[12], items[13])


def _cached(obj, name: str, compute):
    value = obj.__dict__.get(name)
    if value is None:
        value = compute()
        object.__setattr__(obj, name, value)
    return value


@dataclass(frozen=True)
class Log:
    address: Address
    topics: tuple[bytes, ...]
    data: bytes

    def to_rlp(self) -> list:
        return [self.address, list(self.topics), self.data]

    @classmethod
    def from_rlp(cls, item: list) -> "Log":
        return cls(Address(item[0]), tuple(item[1]), item[2])


@dataclass(frozen=True)
class Receipt:
    tx_type: int
    succeeded: bool
    cumulative_gas_used: int
    gas_used: int
    effective_gas_price: int
    logs: tuple[Log, ...]
    bloom: bytes = field(repr=False)

    def encode(self) -> bytes:
        """Ethereum's typed receipt encoding plus the fields JSON-RPC reports."""
        return rlp.encode([self.tx_type, int(self.succeeded), self.cumulative_gas_used, self.gas_used,
                           self.effective_gas_price, [log.to_rlp() for log in self.logs], self.bloom])

    @classmethod
    def decode(cls, data: bytes) -> "Receipt":
        items = rlp.decode(data)
        ints = [int.from_bytes(items[i], "big") for i in range(5)]
        return cls(ints[0], bool(ints[1]), ints[2], ints[3], ints[4],
                   tuple(Log.from_rlp(item) for item in items[5]), items[6])


def logs_bloom(logs) -> bytes:
    bloom = BloomFilter()
    for log in logs:
        bloom.add(log.address)
        for topic in log.topics:
            bloom.add(topic)
    return int(bloom).to_bytes(256, "big")


def combine_blooms(blooms) -> bytes:
    value = 0
    for bloom in blooms:
        value |= int.from_bytes(bloom, "big")
    return value.to_bytes(256, "big")


@dataclass(frozen=True)
class Block:
    header: Header
    transactions: tuple  # of vm.transactions.Transaction

    @property
    def hash(self) -> Hash32:
        return self.header.hash

    def encode_body(self) -> bytes:
        return rlp.encode([tx.raw for tx in self.transactions])

    def encode(self) -> bytes:
        """The wire form: RLP of [header, [raw transactions]]."""
        return rlp.encode([self.header.encode(), [tx.raw for tx in self.transactions]])


MAX_BLOCK_BYTES = 4 * 1024 * 1024


def decode_block(data: bytes, decode_transaction) -> Block:
    """Parse a block's wire form; raises InvalidBlock on anything malformed.

    `decode_transaction` turns raw bytes into a transaction (the chain passes its
    cached decoder so a transaction already seen in the mempool is not re-verified)."""
    if len(data) > MAX_BLOCK_BYTES:
        raise InvalidBlock(f"block of {len(data)} bytes exceeds {MAX_BLOCK_BYTES}")
    try:
        header_bytes, raws = rlp.decode(data, strict=True)
        header = Header.decode(header_bytes)
        if not isinstance(raws, list) or not all(isinstance(raw, bytes) for raw in raws):
            raise ValueError("transactions must be a list of byte strings")
        return Block(header, tuple(decode_transaction(raw) for raw in raws))
    except InvalidBlock:
        raise
    except (rlp.DecodingError, ValueError, TypeError) as exc:
        raise InvalidBlock(f"malformed block: {exc}") from None

