"""What the network layer may ask of the node, and nothing more (DESIGN §4.6).

The libp2p side (trio, its own thread) holds a `ChainPort`; every call on it is
made through `node.p2p.bridge`, which runs it on the node's asyncio loop, where
the chain and mempool live. The node implements this protocol in
`node.network_port`; tests may implement it with fakes."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol


@dataclass(frozen=True)
class ChainStatus:
    """Exchanged in the status handshake, and used to decide whom to sync from."""

    chain_id: int
    genesis_hash: bytes
    head_number: int
    head_hash: bytes
    total_weight: int
    """Fork-choice weight of the head; a peer with more is ahead of us."""


class Outcome(Enum):
    ACCEPTED = "accepted"
    """New and valid: relay it."""
    KNOWN = "known"
    """Already had it: don't relay again, don't penalise."""
    IGNORED = "ignored"
    """Not stored by policy, not invalid (a side block over the caps or below the reorg
    horizon): don't relay, don't penalise."""
    UNKNOWN_PARENT = "unknown_parent"
    """A block whose parent we lack: fetch the gap from the sender, don't relay yet."""
    INVALID = "invalid"
    """Breaks a rule: reject, don't relay, score the sender down."""


@dataclass(frozen=True)
class ImportResult:
    outcome: Outcome
    reason: str = ""
    number: int | None = None
    """For blocks: the block's height (lets the sync fetch [our head+1 .. number])."""
    ahead: bool = False
    """For an ignored block: stamped too far ahead of our clock, so worth asking for again soon."""


class ChainPort(Protocol):
    def status(self) -> ChainStatus: ...

    def import_block(self, encoded_block: bytes, durable: bool = True) -> ImportResult:
        """Verify and store a block in its canonical encoding (see vm.blocks.Block.encode);
        `durable=False`: its write need not be on disk yet (the next durable one syncs it)."""

    def add_transaction(self, raw_transaction: bytes) -> ImportResult:
        """Offer a raw signed transaction to the mempool."""

    def blocks(self, start: int, count: int) -> list[bytes]:
        """Encoded canonical blocks from height `start`, at most `count`, fewer at the head or
        where the next block would take the answer past the sync response's byte cap."""

    def canonical_hash(self, number: int) -> bytes | None:
        """Our canonical block hash at `number` (to find a common ancestor with a peer)."""

    def is_admitted(self, peer_id: str) -> bool:
        """Whether a node key (libp2p peer id, base58) may stay connected."""
