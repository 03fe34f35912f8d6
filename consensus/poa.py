"""Proof of authority, Clique-style: signers take turns by height; a block is
sealed by its signer's signature over the seal hash.

In-turn blocks weigh 2 and out-of-turn blocks 1; out-of-turn signers wait one
period per place in the backup order (`_backup_order`), so backups don't collide; a signer
may not seal again within ⌊N/2⌋+1 blocks of its last one, so a minority cannot
run the chain. Equal-weight forks are settled by the chain's deterministic
tie-break (EIP-3436), never by timing.

The signer set starts as genesis names it; admins vote changes through the
Signers contract, and every `epoch`-th block (a checkpoint) carries the voted
set in its extra data. Which signers may seal a block is therefore read from
the header chain alone, and validators check the checkpoint against the
contract's state when they execute it."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from consensus.engine import NEVER, ChainReader, Engine, HeaderFields, SealOptions, Signer, recover_sealer
from vm.blocks import Header, InvalidBlock, Receipt
from vm.native.signers import MAX_SIGNERS, SIGNERS
from vm.state import State
from vm.types import Address

IN_TURN, OUT_OF_TURN = 2, 1


DEFAULT_EPOCH = 100


@dataclass(frozen=True)
class PoAConfig:
    signers: tuple[Address, ...]
    """The genesis signer set, in turn order."""
    period: int
    """Seconds between a block and its child."""
    epoch: int = DEFAULT_EPOCH
    """Blocks between checkpoints, where voted signer changes take effect."""

    @classmethod
    def from_params(cls, params: dict, block_time: int) -> "PoAConfig":
        signers = params.get("signers")
        if not isinstance(signers, list) or not signers:
            raise ValueError("consensus.signers must list at least one signer address")
        addresses = tuple(Address.from_hex(s) for s in signers)
        if len(set(addresses)) != len(addresses):
            raise ValueError("consensus.signers lists a signer twice")
        epoch = params.get("epoch", DEFAULT_EPOCH)
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
            raise ValueError("consensus.epoch must be a positive number of blocks")
        return cls(addresses, block_time, epoch)


class ProofOfAuthority(Engine):
    name = "poa"

    def __init__(self, config: PoAConfig) -> None:
        self.config = config
        self._checkpoint_signers: dict[bytes, tuple[Address, ...]] = {}

    def genesis_state(self, state: State) -> None:
        SIGNERS.write_signers(state, list(self.config.signers))

    def _is_checkpoint(self, number: int) -> bool:
        return number > 0 and number % self.config.epoch == 0

    def signers(self, chain: ChainReader, parent: Header) -> tuple[Address, ...]:
        """Who may seal a child of `parent`: the set of the last checkpoint at or below it."""
        header = parent
        while header.number > 0 and not self._is_checkpoint(header.number):
            header = chain.header_by_hash(header.parent_hash)
        if header.number == 0:
            return self.config.signers
        cached = self._checkpoint_signers.get(header.hash)
        if cached is None:
            extra = header.extra_data
            cached = tuple(Address(extra[i:i + 20]) for i in range(0, len(extra), 20))
            if len(self._checkpoint_signers) >= 1024:
                self._checkpoint_signers.clear()
            self._checkpoint_signers[header.hash] = cached
        return cached

    @staticmethod
    def _in_turn(number: int, signer: Address, signers: tuple[Address, ...]) -> bool:
        return signers[number % len(signers)] == signer

    def _recently_signed(self, chain: ChainReader, parent: Header, signer: Address,
                         signers: tuple[Address, ...]) -> bool:
        limit = len(signers) // 2 + 1
        header = parent
        for _ in range(limit - 1):
            if header.number == 0:
                return False
            if header.producer == signer:
                return True
            header = chain.header_by_hash(header.parent_hash)
        return False

    def validators(self, chain: ChainReader, parent: Header) -> list[Address]:
        return list(self.signers(chain, parent))

    def production_time(self, chain: ChainReader, parent: Header, producer: Address) -> int | None:
        signers = self.signers(chain, parent)
        if producer not in signers or self._recently_signed(chain, parent, producer, signers):
            return None
        earliest = parent.timestamp + self.config.period
        if self._in_turn(parent.number + 1, producer, signers):
            return earliest
        backups = [s for s in self._backup_order(parent.number + 1, signers)
                   if not self._recently_signed(chain, parent, s, signers)]
        return earliest + (backups.index(producer) + 1) * self.config.period

    @staticmethod
    def _backup_order(number: int, signers: tuple[Address, ...]) -> list[Address]:
        """Who seals block `number` when its in-turn signer does not, first to last: the signer
        whose own turn is farthest off first (turn order backwards from the in-turn one). A backup
        stays too recent to seal for ⌊N/2⌋ blocks; one whose turn falls in them misses it, and
        the next backup the same: with the nearest-turn backup first, a 4-signer testnet ran every
        block out of turn, at half speed, after one missed turn. This order is back in turn after
        at most two backup blocks (tests/consensus/test_poa.py)."""
        n = len(signers)
        return [signers[(number - k) % n] for k in range(1, n)]

    def prepare(self, chain: ChainReader, parent: Header, producer: Address, timestamp: int,
                state: State) -> HeaderFields:
        """Difficulty by turn; a checkpoint also carries the voted signer set from the parent's state."""
        in_turn = self._in_turn(parent.number + 1, producer, self.signers(chain, parent))
        extra = b"".join(SIGNERS.current(state)) if self._is_checkpoint(parent.number + 1) else b""
        return HeaderFields(difficulty=IN_TURN if in_turn else OUT_OF_TURN, extra_data=extra)

    def seal(self, header: Header, signer: Signer, stop: threading.Event = NEVER,
             options: SealOptions = SealOptions()) -> Header | None:
        return header.with_seal(signer.sign(header.seal_hash))

    def verify_header(self, chain: ChainReader, header: Header, parent: Header) -> None:
        signer = recover_sealer(header, self.name)
        if signer != header.producer:
            raise InvalidBlock(f"poa: sealed by {signer.to_checksum()} but names {header.producer.to_checksum()}")
        signers = self.signers(chain, parent)
        if signer not in signers:
            raise InvalidBlock(f"poa: {signer.to_checksum()} is not an authorized signer")
        if header.timestamp < parent.timestamp + self.config.period:
            raise InvalidBlock("poa: block sealed before its parent's period ended")
        expected = IN_TURN if self._in_turn(header.number, signer, signers) else OUT_OF_TURN
        if header.difficulty != expected:
            raise InvalidBlock(f"poa: wrong difficulty {header.difficulty}, want {expected}")
        if self._recently_signed(chain, parent, signer, signers):
            raise InvalidBlock(f"poa: {signer.to_checksum()} signed too recently")
        extra = header.extra_data
        if self._is_checkpoint(header.number):
            if not extra or len(extra) % 20 or len(extra) > 20 * MAX_SIGNERS:
                raise InvalidBlock("poa: a checkpoint must list the signers (20 bytes each)")
        elif extra:
            raise InvalidBlock("poa: extra data is only allowed at checkpoints")

    def missed_producer(self, chain: ChainReader, header: Header) -> Address | None:
        parent = chain.header_by_hash(header.parent_hash)
        if header.difficulty != OUT_OF_TURN or parent is None:
            return None
        signers = self.signers(chain, parent)
        return signers[header.number % len(signers)]

    def weight(self, header: Header) -> int:
        return header.difficulty

    def finalize(self, chain: ChainReader, header: Header, state: State, transactions: tuple,
                 receipts: tuple[Receipt, ...]) -> None:
        """PoA mints nothing and penalises nothing: signers earn the transaction fees.
        A checkpoint discards every open signer vote, as Clique does at each epoch, so a
        proposal that did not reach a majority within one epoch must be voted again."""
        if self._is_checkpoint(header.number):
            SIGNERS.reset_votes(state)
