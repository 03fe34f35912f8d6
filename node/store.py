"""The LevelDB schema (plyvel). One module owns every key prefix, so the layout
can be read in one place:

    h<hash>          header RLP                b<hash>   body (raw transactions)
    r<hash>          receipts                  w<hash>   total fork-choice weight
    u<hash>          undo log: state before the block (for reorgs)
    n<number:8>      canonical hash at height  t<txhash> (block hash, index) of a canonical tx
    S<state key>     head state value          H         head hash
    G                genesis hash              C         the genesis document (JSON)
    s<number:8><hash>  producer of a stored non-canonical (side or reorged-out) block

The `s` index lists side blocks by height, so the chain can count them per height and
per producer, prune those the reorg horizon has passed, and find a bad block's stored
descendants, without scanning every header.

Importing a block, or switching to a heavier branch, is one write batch with
`sync=True`, head pointer included, so a process killed at any instant reopens
at the last whole block. The staging functions below all write into a batch."""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import plyvel
import rlp

from vm import codec
from vm.blocks import Header, Receipt
from vm.types import Hash32

HEADER = b"h"
BODY = b"b"
RECEIPTS = b"r"
WEIGHT = b"w"
UNDO = b"u"
CANONICAL = b"n"
TX_LOCATION = b"t"
STATE = b"S"
HEAD = b"H"
GENESIS = b"G"
GENESIS_DOCUMENT = b"C"
SIDE = b"s"
BLOCK_PREFIXES = (HEADER, BODY, WEIGHT, RECEIPTS, UNDO)
"""Every key a stored block may have under its hash (the `s` index entry aside)."""
_END_OF_SIDE = b"t"
"""The first key after every `s` key."""
_MAX_RLP_PREFIX = 9
"""Longest RLP length prefix: one byte plus up to eight of length."""


class DatabaseLocked(RuntimeError):
    """Another gridnode process holds this data dir."""


class StoreUnwritable(OSError):
    """The chain store could not write (a full disk, a read-only data dir, an I/O error). The
    batch that failed landed not at all, and LevelDB refuses writes until it is reopened, so the
    node must stop: it starts again where the last committed batch left it."""


UNWRITABLE = ("Read-only file system", "No space left on device", "Permission denied")
"""Why LevelDB could not take its LOCK file that is not another process holding it."""


class Store:
    def __init__(self, path: str) -> None:
        self.on_unwritable: list[Callable[[StoreUnwritable], None]] = []
        """Called (from the writing thread) when a batch fails: the node stops on it."""
        try:
            self.db = plyvel.DB(path, create_if_missing=True)
        except plyvel.IOError as exc:
            reason = _reason(exc)
            if "lock" in reason.lower() and not any(cause in reason for cause in UNWRITABLE):
                raise DatabaseLocked(f"{path} is in use by another gridnode process") from None
            raise StoreUnwritable(f"cannot open the chain store {path}: {reason} "
                                  "(is the data dir read-only or its disk full?)") from None

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def batch(self, durable: bool = True) -> Iterator[plyvel.WriteBatch]:
        """All writes inside land together or not at all, fsynced before this returns. With
        `durable=False` the write is in the OS's hands when this returns (a killed process loses
        nothing, a power cut may), and the next durable batch makes it durable too: LevelDB
        appends to its log in order, and a log it moves on from is flushed to a synced table.
        An fsync costs about 0.3 ms here, as much as importing an empty block."""
        try:
            with self.db.write_batch(transaction=True, sync=durable) as batch:
                yield batch
        except plyvel.IOError as exc:
            error = StoreUnwritable(f"the chain store could not write: {_reason(exc)} "
                                    "(is the disk full or the data dir read-only?); nothing of that write landed")
            for listener in self.on_unwritable:
                listener(error)
            raise error from None

    # -- chain metadata ---------------------------------------------------
    def head_hash(self) -> Hash32 | None:
        value = self.db.get(HEAD)
        return Hash32(value) if value else None

    def genesis_hash(self) -> Hash32 | None:
        value = self.db.get(GENESIS)
        return Hash32(value) if value else None

    def genesis_document(self) -> bytes | None:
        return self.db.get(GENESIS_DOCUMENT)

    # -- blocks -----------------------------------------------------------
    def header(self, block_hash: bytes) -> Header | None:
        value = self.db.get(HEADER + block_hash)
        return Header.decode(value) if value else None

    def body(self, block_hash: bytes) -> list[bytes] | None:
        value = self.db.get(BODY + block_hash)
        return rlp.decode(value) if value is not None else None

    def receipts(self, block_hash: bytes) -> list[Receipt] | None:
        value = self.db.get(RECEIPTS + block_hash)
        return [Receipt.decode(item) for item in rlp.decode(value)] if value is not None else None

    def total_weight(self, block_hash: bytes) -> int | None:
        value = self.db.get(WEIGHT + block_hash)
        return int.from_bytes(value, "big") if value is not None else None

    def canonical_hash(self, number: int) -> Hash32 | None:
        value = self.db.get(CANONICAL + number.to_bytes(8, "big"))
        return Hash32(value) if value else None

    def tx_location(self, tx_hash: bytes) -> tuple[Hash32, int] | None:
        value = self.db.get(TX_LOCATION + tx_hash)
        if value is None:
            return None
        block_hash, index = rlp.decode(value)
        return Hash32(block_hash), int.from_bytes(index, "big")

    def side_blocks(self, first: int = 0, last: int | None = None) -> Iterator[tuple[int, Hash32, bytes]]:
        """(number, hash, producer) of indexed side blocks with `first` <= number <= `last`, by height."""
        stop = SIDE + (last + 1).to_bytes(8, "big") if last is not None else _END_OF_SIDE
        for key, producer in self.db.iterator(start=SIDE + first.to_bytes(8, "big"), stop=stop):
            yield int.from_bytes(key[1:9], "big"), Hash32(key[9:]), producer

    def block_size(self, block_hash: bytes) -> int | None:
        """An upper bound on the block's wire encoding (`Block.encode`: RLP of [header, body
        items]), from the stored lengths, without decoding a transaction."""
        header, body = self.db.get(HEADER + block_hash), self.db.get(BODY + block_hash)
        return None if header is None or body is None else len(header) + len(body) + 2 * _MAX_RLP_PREFIX

    def state_items(self) -> Iterator[tuple[bytes, bytes]]:
        yield from self.db.iterator(prefix=STATE, include_key=True)

    def state_value(self, key: bytes) -> bytes | None:
        return self.db.get(STATE + key)

    def undo_log(self, block_hash: bytes) -> list[tuple[bytes, bytes | None]] | None:
        value = self.db.get(UNDO + block_hash)
        if value is None:
            return None
        return [(key, previous[0] if previous else None) for key, previous in rlp.decode(value)]


def put_block(batch, header: Header, body: bytes, total_weight: int) -> None:
    """A block's header, body and weight: all a side-chain block gets."""
    block_hash = header.hash
    batch.put(HEADER + block_hash, header.encode())
    batch.put(BODY + block_hash, body)
    batch.put(WEIGHT + block_hash, total_weight.to_bytes(32, "big"))


def put_side(batch, number: int, block_hash: bytes, producer: bytes) -> None:
    """Index a stored block as non-canonical at `number`."""
    batch.put(_side_key(number, block_hash), producer)


def unset_side(batch, number: int, block_hash: bytes) -> None:
    batch.delete(_side_key(number, block_hash))


def delete_block(batch, number: int, block_hash: bytes) -> None:
    """Every key a non-canonical block may have: header, body, weight, receipts, undo log, index entry."""
    for prefix in BLOCK_PREFIXES:
        batch.delete(prefix + block_hash)
    unset_side(batch, number, block_hash)


def _side_key(number: int, block_hash: bytes) -> bytes:
    return SIDE + number.to_bytes(8, "big") + block_hash


def put_execution(batch, block_hash: bytes, receipts: list[Receipt],
                  undo: list[tuple[bytes, bytes | None]]) -> None:
    """What running the block produced: receipts, and the state before it (for reorgs)."""
    batch.put(RECEIPTS + block_hash, codec.encode([receipt.encode() for receipt in receipts]))
    batch.put(UNDO + block_hash, codec.encode([[key, [] if prev is None else [prev]] for key, prev in undo]))


def set_canonical(batch, number: int, block_hash: bytes, tx_hashes: list[bytes]) -> None:
    batch.put(CANONICAL + number.to_bytes(8, "big"), block_hash)
    for index, tx_hash in enumerate(tx_hashes):
        batch.put(TX_LOCATION + tx_hash, codec.encode([block_hash, index]))


def unset_canonical(batch, number: int, tx_hashes: list[bytes]) -> None:
    batch.delete(CANONICAL + number.to_bytes(8, "big"))
    for tx_hash in tx_hashes:
        batch.delete(TX_LOCATION + tx_hash)


def put_state(batch, changes: dict[bytes, bytes | None]) -> None:
    for key, value in changes.items():
        if value is None:
            batch.delete(STATE + key)
        else:
            batch.put(STATE + key, value)


def set_head(batch, block_hash: bytes) -> None:
    batch.put(HEAD, block_hash)


def write_genesis_marker(batch, genesis_hash: bytes, document: bytes) -> None:
    batch.put(GENESIS, genesis_hash)
    batch.put(GENESIS_DOCUMENT, document)


def _reason(error: plyvel.IOError) -> str:
    """LevelDB's message (bytes) as text, e.g. "IO error: …/000006.log: No space left on device"."""
    message = error.args[0] if error.args else error
    return message.decode(errors="replace") if isinstance(message, bytes) else str(message)
