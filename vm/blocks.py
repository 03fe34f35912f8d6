"""Headers, blocks, logs and receipts with their one canonical RLP encoding."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from eth_bloom import BloomFilter

from vm import codec
from vm.crypto import keccak256
from vm.gas import TX_BASE
from vm.limits import MAX_BLOCK_BYTES, MAX_EXTRA_DATA, MAX_HEADER_BYTES, MAX_SEAL_BYTES
from vm.transactions import InvalidTransaction, check_structure
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
        return codec.encode(self._fields() + [self.seal])

    @property
    def hash(self) -> Hash32:
        return _cached(self, "_hash", lambda: keccak256(self.encode()))

    @property
    def seal_hash(self) -> Hash32:
        """Hash of everything but the seal: what a PoA signer signs and PoW grinds on."""
        return _cached(self, "_seal_hash", lambda: keccak256(codec.encode(self._fields())))

    def with_seal(self, seal: bytes) -> "Header":
        return replace(self, seal=seal)

    @classmethod
    def decode(cls, data: bytes) -> "Header":
        """The header `data` encodes canonically; raises InvalidBlock on anything else."""
        if len(data) > MAX_HEADER_BYTES:
            raise InvalidBlock(f"header of {len(data)} bytes exceeds {MAX_HEADER_BYTES}")
        try:
            return cls._from_fields(codec.fields(codec.decode(data), 14, "header"))
        except codec.MalformedRLP as exc:
            raise InvalidBlock(f"malformed header: {exc}") from None

    @classmethod
    def _from_fields(cls, items: list) -> "Header":
        def hash32(index: int, name: str) -> Hash32:
            return Hash32(codec.string(items[index], name, length=32))

        return cls(
            parent_hash=hash32(0, "parent hash"), number=codec.uint(items[1], "number"),
            timestamp=codec.uint(items[2], "timestamp"),
            producer=Address(codec.string(items[3], "producer", length=20)),
            state_root=hash32(4, "state root"), transactions_root=hash32(5, "transactions root"),
            receipts_root=hash32(6, "receipts root"), logs_bloom=codec.string(items[7], "logs bloom", length=256),
            gas_limit=codec.uint(items[8], "gas limit"), gas_used=codec.uint(items[9], "gas used"),
            base_fee=codec.uint(items[10], "base fee"), difficulty=codec.uint(items[11], "difficulty"),
            extra_data=codec.string(items[12], "extra data", max_length=MAX_EXTRA_DATA),
            seal=codec.string(items[13], "seal", max_length=MAX_SEAL_BYTES))


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
    def from_rlp(cls, item: codec.Item) -> "Log":
        """Raises codec.MalformedRLP unless `item` is [address, [topic, …], data]."""
        address, topics, data = codec.fields(item, 3, "log")
        return cls(Address(codec.string(address, "log address", length=20)),
                   tuple(codec.strings(topics, "log topics", length=32)), codec.string(data, "log data"))


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
        return codec.encode([self.tx_type, int(self.succeeded), self.cumulative_gas_used, self.gas_used,
                             self.effective_gas_price, [log.to_rlp() for log in self.logs], self.bloom])

    @classmethod
    def decode(cls, data: bytes) -> "Receipt":
        """The receipt `data` encodes canonically; raises InvalidBlock on anything else."""
        try:
            items = codec.fields(codec.decode(data), 7, "receipt")
            tx_type, succeeded, cumulative, gas_used, price = (codec.uint(items[i], name) for i, name in enumerate(
                ("type", "status", "cumulative gas used", "gas used", "effective gas price")))
            if succeeded > 1:
                raise codec.MalformedRLP("receipt status must be 0 or 1")
            if not isinstance(items[5], list):
                raise codec.MalformedRLP("receipt logs must be a list")
            logs = tuple(Log.from_rlp(item) for item in items[5])
            return cls(tx_type, bool(succeeded), cumulative, gas_used, price, logs,
                       codec.string(items[6], "receipt bloom", length=256))
        except codec.MalformedRLP as exc:
            raise InvalidBlock(f"malformed receipt: {exc}") from None


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
        return codec.encode([tx.raw for tx in self.transactions])

    def encode(self) -> bytes:
        """The wire form: RLP of [header, [raw transactions]]."""
        return codec.encode([self.header.encode(), [tx.raw for tx in self.transactions]])


def parse_block(data: bytes) -> tuple[Header, tuple[bytes, ...]]:
    """A block's wire form as its header and raw transactions, without recovering any
    sender; raises InvalidBlock on anything malformed.

    Cheapest checks first: the size; then the structure of the whole block (header
    fields, transaction count, every transaction's envelope). Recovering senders,
    the costly part, is left to the caller, which first checks the seal and the
    parent (`Chain.import_wire`), so a forged block costs no signature work."""
    if len(data) > MAX_BLOCK_BYTES:
        raise InvalidBlock(f"block of {len(data)} bytes exceeds {MAX_BLOCK_BYTES}")
    try:
        header_bytes, raws = codec.fields(codec.decode(data), 2, "block")
        header = Header.decode(codec.string(header_bytes, "header"))
        raws = codec.strings(raws, "block transactions")
    except codec.MalformedRLP as exc:
        raise InvalidBlock(f"malformed block: {exc}") from None
    if len(raws) > header.gas_limit // TX_BASE:
        raise InvalidBlock(f"{len(raws)} transactions cannot fit a gas limit of {header.gas_limit}")
    try:
        for raw in raws:
            check_structure(raw)
    except InvalidTransaction as exc:
        raise InvalidBlock(f"invalid transaction: {exc}") from None
    return header, tuple(raws)


def decode_transactions(raws, decode_transaction) -> tuple:
    """Recover the senders of a parsed block's transactions; an invalid one makes the block invalid."""
    try:
        return tuple(decode_transaction(raw) for raw in raws)
    except InvalidTransaction as exc:
        raise InvalidBlock(f"invalid transaction: {exc}") from None


def decode_block(data: bytes, decode_transaction) -> Block:
    """Parse a block's wire form and recover its senders (`decode_transaction` is the
    chain's cached decoder, so a transaction seen in the mempool is not verified again)."""
    header, raws = parse_block(data)
    return Block(header, decode_transactions(raws, decode_transaction))
