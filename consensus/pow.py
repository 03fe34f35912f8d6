"""Proof of work: real hashing of the seal-less header against a target.

A block is valid when keccak(seal_hash ‖ nonce) ≤ 2^256 / difficulty. The
difficulty retargets every block toward the genesis block time in bounded
steps (at most ±1/ADJUSTMENT_QUOTIENT of the parent's per block, and at most
MAX_DOWN_STEPS of those down), the heaviest total difficulty is the head, and
the miner is paid R_f + r·s elecoins for a block of s transactions (paper 000,
eq. 1; R_f and r from genesis), where s counts only transactions that did work
for someone else (see `rewarded_transactions`). Each node may cap its own hash rate
(`--hashrate`), which is how the edge servers' shares β_j are set."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from consensus.engine import NEVER, ChainReader, Engine, HeaderFields, SealOptions, Signer
from vm.blocks import Header, InvalidBlock, Receipt
from vm.constants import ELECOIN
from vm.crypto import keccak256
from vm.state import State
from vm.types import Address

ADJUSTMENT_QUOTIENT = 16
MAX_DOWN_STEPS = 8
TWO_256 = 2**256
NONCE_BYTES = 8
BATCH_SECONDS = 0.01
"""Sealing checks its stop signal and paces itself to the hash-rate cap this often."""


def work_hash(seal_hash: bytes, nonce: bytes) -> int:
    return int.from_bytes(keccak256(seal_hash + nonce), "big")


@dataclass(frozen=True)
class PoWConfig:
    block_time: int
    difficulty: int
    """Difficulty of block 1 (expected hashes per block)."""
    min_difficulty: int
    fixed_reward: int
    """R_f in wei."""
    reward_per_tx: int
    """r in wei per transaction."""
    reward_min_fee: int = 0
    """A transaction counts toward s only if it paid at least this many wei in fees."""
    reward_max_txs: int = 200
    """s is capped here: paper 000's block size (§IV-A, s = 200)."""

    @classmethod
    def from_params(cls, params: dict, block_time: int) -> "PoWConfig":
        def integer(name: str, default: int, minimum: int) -> int:
            value = params.get(name, default)
            if isinstance(value, str):
                value = int(value, 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"consensus.{name} must be an integer ≥ {minimum}")
            return value
        return cls(block_time=block_time,
                   difficulty=integer("difficulty", 10_000, 1),
                   min_difficulty=integer("minDifficulty", 1_000, 1),
                   fixed_reward=integer("fixedReward", 200 * ELECOIN, 0),
                   reward_per_tx=integer("rewardPerTx", 3 * ELECOIN, 0),
                   reward_min_fee=integer("rewardMinFee", 0, 0),
                   reward_max_txs=integer("rewardMaxTxs", 200, 0))


class ProofOfWork(Engine):
    name = "pow"

    def __init__(self, config: PoWConfig) -> None:
        self.config = config

    def genesis_state(self, state: State) -> None:
        """PoW needs no state of its own: anyone with hash power may mine."""

    def validators(self, chain: ChainReader, parent: Header) -> list[Address]:
        return []

    def production_time(self, chain: ChainReader, parent: Header, producer: Address) -> int | None:
        return parent.timestamp + 1

    def difficulty(self, parent: Header, timestamp: int) -> int:
        """Homestead-style retarget toward the block time: faster than target → harder by
        parent/ADJUSTMENT_QUOTIENT; each further block time late → easier by as much, capped."""
        if parent.number == 0:
            return self.config.difficulty
        steps = max(1 - (timestamp - parent.timestamp) // self.config.block_time, -MAX_DOWN_STEPS)
        return max(parent.difficulty + parent.difficulty // ADJUSTMENT_QUOTIENT * steps, self.config.min_difficulty)

    def prepare(self, chain: ChainReader, parent: Header, producer: Address, timestamp: int,
                state: State) -> HeaderFields:
        return HeaderFields(difficulty=self.difficulty(parent, timestamp))

    def seal(self, header: Header, signer: Signer, stop: threading.Event = NEVER,
             options: SealOptions = SealOptions()) -> Header | None:
        """Grind nonces until one meets the target, at most `options.hashrate` per second."""
        target = TWO_256 // header.difficulty
        seal_hash = header.seal_hash
        nonce = int.from_bytes(keccak256(seal_hash + signer.address)[:NONCE_BYTES], "big")  # miners start apart
        per_batch = max(int((options.hashrate or 10**9) * BATCH_SECONDS), 1)
        started, hashes = time.monotonic(), 0
        while not stop.is_set():
            for _ in range(per_batch):
                candidate = nonce.to_bytes(NONCE_BYTES, "big")
                if work_hash(seal_hash, candidate) <= target:
                    return header.with_seal(candidate)
                nonce = (nonce + 1) % 2**64
            hashes += per_batch
            if options.hashrate:  # pace against the start, so time lost to a late wake-up is made up
                stop.wait(max(started + hashes / options.hashrate - time.monotonic(), 0))
        return None

    def verify_header(self, chain: ChainReader, header: Header, parent: Header) -> None:
        if header.timestamp <= parent.timestamp:
            raise InvalidBlock("pow: timestamp not after the parent's")
        expected = self.difficulty(parent, header.timestamp)
        if header.difficulty != expected:
            raise InvalidBlock(f"pow: wrong difficulty {header.difficulty}, want {expected}")
        if len(header.seal) != NONCE_BYTES:
            raise InvalidBlock("pow: seal must be an 8-byte nonce")
        if work_hash(header.seal_hash, header.seal) > TWO_256 // header.difficulty:
            raise InvalidBlock("pow: insufficient work")
        if header.extra_data:
            raise InvalidBlock("pow: extra data must be empty")

    def weight(self, header: Header) -> int:
        return header.difficulty

    def finalize(self, chain: ChainReader, header: Header, state: State, transactions: tuple,
                 receipts: tuple[Receipt, ...]) -> None:
        """Pay the miner R_f + r·s (paper 000, eq. 1) for the s transactions it packed."""
        s = rewarded_transactions(header.producer, transactions, receipts, self.config)
        state.add_balance(header.producer, self.config.fixed_reward + self.config.reward_per_tx * s)


def rewarded_transactions(producer: Address, transactions: tuple, receipts: tuple[Receipt, ...],
                          config: PoWConfig) -> int:
    """The paper's s: the block's transactions that did work for someone other than the miner.

    Fees go to the miner, so a miner can pack transactions of its own at no cost; and a
    zero-value self-transfer changes nothing but a nonce. Neither is work the
    performance reward r·s pays for, so s counts a transaction only if it succeeded,
    was not sent by the producer, was not sent to its own sender, and paid at least
    `rewardMinFee` in fees; and s is capped at `rewardMaxTxs`, which bounds what
    collusion with another account can farm per block."""
    counted = sum(1 for tx, receipt in zip(transactions, receipts, strict=True)
                  if receipt.succeeded and tx.sender != producer and tx.to != tx.sender
                  and receipt.gas_used * receipt.effective_gas_price >= config.reward_min_fee)
    return min(counted, config.reward_max_txs)
