"""The one interface every consensus engine implements, after go-ethereum's
`consensus.Engine`. The chain and the block producer call only these methods;
they never ask which engine they run."""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from vm.blocks import Header, InvalidBlock, Receipt
from vm.environment import BlockEnvironment
from vm.crypto import InvalidSignature, private_key_to_address, recover_address, sign
from vm.state import State
from vm.types import Address, Hash32


class ChainReader(Protocol):
    """The narrow, read-only view of the chain an engine may use."""

    def header_by_hash(self, block_hash: Hash32) -> Header | None: ...

    def header_by_number(self, number: int) -> Header | None:
        """The canonical header at `number`."""

    @property
    def head(self) -> Header: ...

    def state(self) -> State:
        """A throwaway view of the head's post-state (engines whose producer order lives in state)."""


@dataclass(frozen=True)
class Signer:
    """A node's sealing key (PoA signer, PoW miner's reward address)."""

    private_key: bytes

    @property
    def address(self) -> Address:
        return private_key_to_address(self.private_key)

    def sign(self, message_hash: bytes) -> bytes:
        """65 bytes r ‖ s ‖ y-parity, the layout Clique uses in its seal."""
        y_parity, r, s = sign(message_hash, self.private_key)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])


@dataclass(frozen=True)
class SealOptions:
    """This node's own sealing settings (not consensus rules)."""

    hashrate: int | None = None
    """Hashes per second a grinding engine may spend (PoW's `--hashrate`); None for no cap."""


@dataclass(frozen=True)
class EngineServices:
    """What an engine may need from the layers above it, injected by the genesis (the engine
    never imports the market): the meters' readings, the EV chargers' reports and the proposer's
    coalition search."""

    reading: Callable[[State, Address, int], tuple[int, int] | None] | None = None
    """(generation Wh, consumption Wh) posted for a prosumer in a meter slot, or None."""
    slot_seconds: int | None = None
    """The meters' slot length: the settlement slot of score-based engines."""
    partition: Callable[..., Sequence[Sequence[int]]] | None = None
    """The producer's coalition search (floats and a solver allowed; validators never run it)."""
    ev_report: Callable[[State, Address, int], tuple[int, int, int, bool, int, int] | None] | None = None
    """An EV's charger report for an hour: (charged Wh, discharged Wh, SOC ppm, departing,
    capacity Wh, SOC limit ppm), or None."""
    hour_seconds: int | None = None
    """The chargers' hour length (PoSOC's hourly scores)."""


def recover_sealer(header: Header, engine: str) -> Address:
    """Who signed `header`'s 65-byte seal (r ‖ s ‖ y-parity over the seal hash)."""
    if len(header.seal) != 65:
        raise InvalidBlock(f"{engine}: seal must be a 65-byte signature")
    r, s = int.from_bytes(header.seal[:32], "big"), int.from_bytes(header.seal[32:64], "big")
    try:
        return recover_address(header.seal_hash, header.seal[64], r, s)
    except InvalidSignature as exc:
        raise InvalidBlock(f"{engine}: invalid seal signature") from exc


NEVER = threading.Event()
"""A stop signal that is never set, for sealing that must simply finish."""


@dataclass(frozen=True)
class HeaderFields:
    """What the engine decides about a new header before transactions run."""

    difficulty: int
    extra_data: bytes = b""


class Engine(ABC):
    name: str

    @abstractmethod
    def genesis_state(self, state: State) -> None:
        """Write the engine's own initial state (e.g. the PoA authority set) into block 0."""

    @abstractmethod
    def validators(self, chain: ChainReader, parent: Header) -> list[Address]:
        """The producers allowed to make a child of `parent` (empty: anyone, as under PoW)."""

    def authorized(self, chain: ChainReader, parent: Header, producer: Address) -> bool:
        """Whether `producer` may make blocks on top of `parent` at all."""
        allowed = self.validators(chain, parent)
        return not allowed or producer in allowed

    @abstractmethod
    def production_time(self, chain: ChainReader, parent: Header, producer: Address) -> int | None:
        """Earliest timestamp (Unix seconds) at which `producer` may seal a child of
        `parent`, or None if it may not produce at that height at all."""

    @abstractmethod
    def prepare(self, chain: ChainReader, parent: Header, producer: Address, timestamp: int,
                state: State) -> HeaderFields:
        """The engine's fields for a child of `parent` made by `producer` at `timestamp`,
        given the parent's post-state. Deterministic: validators recompute and compare it."""

    @abstractmethod
    def seal(self, header: Header, signer: Signer, stop: threading.Event = NEVER,
             options: SealOptions = SealOptions()) -> Header | None:
        """Return `header` with a valid seal, or None if `stop` is set first.

        May take long (PoW grinds), so the node calls it off the event loop and sets
        `stop` when a better block arrives."""

    @abstractmethod
    def verify_header(self, chain: ChainReader, header: Header, parent: Header) -> None:
        """Raise InvalidBlock unless `header` is a valid child of `parent` under this engine."""

    @abstractmethod
    def weight(self, header: Header) -> int:
        """Fork-choice weight this block adds; the heaviest total weight is the head."""

    @abstractmethod
    def finalize(self, chain: ChainReader, header: Header, state: State, transactions: tuple,
                 receipts: tuple[Receipt, ...]) -> None:
        """End-of-block rewards, penalties and engine bookkeeping, applied to `state` before
        the state root; `transactions` are the block's, in order, beside their receipts."""

    def system_transactions(self, chain: ChainReader, parent: Header, state: State, env: BlockEnvironment,
                            signer: Signer) -> list[bytes]:
        """Signed transactions the engine itself needs in the block `env` describes, made by this
        node on `parent` (a PoEG settlement); when any are returned the block carries only them."""
        return []

    def is_system_transaction(self, tx) -> bool:
        """Whether `tx` is one only a producer's own block may carry (a PoEG settlement): no pool
        holds one, so a settlement orphaned by a reorg cannot come back in a later block."""
        return False

    def equivocation_evidence(self, first: Header, second: Header) -> tuple[Address, bytes] | None:
        """(to, data) of a transaction that proves `first` and `second` (one parent, one producer)
        an equivocation this engine punishes; None if it does not (PoA, PoW)."""
        return None

    def missed_producer(self, chain: ChainReader, header: Header) -> Address | None:
        """Whose turn `header`'s block filled, if another producer's (PoA: the in-turn signer of
        an out-of-turn block); None where there are no turns (PoW) or none was missed."""
        return None

    def status(self, chain: ChainReader, state: State) -> dict | None:
        """The engine's own view for the RPC (slot, producer order, scores, stakes), if it has one."""
        return None
