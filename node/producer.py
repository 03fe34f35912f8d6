"""Block production: fill a block from the mempool, seal it, commit it, and
the loop that does so whenever the engine says this node may."""
from __future__ import annotations

import asyncio
import logging
import threading
from typing import Callable

from consensus.engine import SealOptions, Signer
from node.bid_order import BidOrder
from node.byzantine import CORRUPTING, EAGER, Misbehaviour, corrupt
from node.chain import Chain, ExecutedBlock
from node.mempool import Mempool
from vm.blocks import Block, InvalidBlock
from vm.pipeline import BLOCK_FULL, BlockBuilder
from vm.transactions import Transaction
from vm.transition import GAS_LIMIT_REACHED, TransactionRejected
from vm.types import Address

SPACE_REASONS = (GAS_LIMIT_REACHED, BLOCK_FULL)
"""Rejections that mean "not in this block", not "never": the transaction stays pooled."""

log = logging.getLogger("gridnode.producer")


def build_block(chain: Chain, mempool: Mempool, signer: Signer, timestamp: int,
                bid_ordering: bool = True) -> ExecutedBlock:
    """Offer the pool's best executable transactions to a child of the head, in the block
    pipeline, up to the gas and byte limits; the block comes back unsealed.

    A transaction that does not fit (gas or bytes) stays in the pool for a later block,
    with its sender's later ones; a smaller one from another sender may still fit. One
    that fails validation here (its sender spent the funds in an earlier transaction of
    this block, say) is dropped from the pool with a logged reason.

    With `bid_ordering` (the default; `gridnode start --no-bid-ordering` turns it off),
    auction bids, and what their senders send after them, go in after the other
    transactions, each auction's by ascending total (node/bid_order.py): a producing
    policy, not a consensus rule.

    A block the engine needs for its own transactions (a PoEG settlement) carries only those."""
    parent = chain.head
    builder, fields = chain.start_block(parent, timestamp, signer.address)
    own = chain.engine.system_transactions(chain, parent, builder.state, builder.env, signer)
    if own:
        for raw in own:
            builder.add(chain.transaction_from_raw(raw))
        return chain.finish_block(parent, builder, fields)
    skipped: set[Address] = set()
    held = BidOrder(builder.contracts) if bid_ordering else None
    for tx in mempool.executable(builder.state, builder.env.base_fee):
        if tx.sender in skipped:
            continue
        if builder.gas_left < 21_000:
            break
        if held is not None and held.hold(builder.state, tx):
            continue
        _offer(builder, mempool, tx, skipped)
    if held is not None:
        for tx in held.release(builder.state, skipped):
            if builder.gas_left < 21_000:
                break
            _offer(builder, mempool, tx, skipped)
    return chain.finish_block(parent, builder, fields)


def _offer(builder: BlockBuilder, mempool: Mempool, tx: Transaction, skipped: set[Address]) -> None:
    """Add `tx` to the block, or note its sender as done for this block (and drop `tx` from
    the pool unless it only lacked room)."""
    try:
        builder.add(tx)
    except TransactionRejected as exc:
        skipped.add(tx.sender)
        if str(exc) not in SPACE_REASONS:
            log.info("dropping transaction", extra={"tx": "0x" + tx.hash.hex(), "reason": str(exc)})
            mempool.drop(tx)


def produce_block(chain: Chain, mempool: Mempool, signer: Signer, timestamp: int,
                  options: SealOptions = SealOptions(), bid_ordering: bool = True) -> ExecutedBlock:
    """Build, seal and commit a block in one go (tests and tools; the node's loop seals off-thread)."""
    executed = build_block(chain, mempool, signer, timestamp, bid_ordering)
    executed = executed.sealed(chain.engine.seal(executed.block.header, signer, options=options))
    commit(chain, executed)
    return executed


def commit(chain: Chain, executed: ExecutedBlock) -> None:
    chain.commit_built(executed)
    header = executed.block.header
    level = logging.INFO if executed.block.transactions else logging.DEBUG
    log.log(level, "sealed block", extra={"number": header.number, "hash": "0x" + header.hash.hex(),
                                    "txs": len(executed.block.transactions), "gas_used": header.gas_used})


class BlockProducer:
    """Seals a block each time the engine's production time for this signer comes,
    and starts over whenever the head moves (a block arrived from a peer). Sealing
    runs in a worker thread, since a PoW seal grinds; a new head stops it."""

    def __init__(self, chain: Chain, mempool: Mempool, signer: Signer,
                 announce: Callable[[Block], None] | None = None, options: SealOptions = SealOptions(),
                 bid_ordering: bool = True, misbehaviour: Misbehaviour | None = None) -> None:
        self.chain = chain
        self.misbehaviour = misbehaviour
        """Set only on a node the fault harness started (node/byzantine.py)."""
        self._withheld = None
        """The parent whose child a withholding producer last let pass."""
        self._early = None
        """The parent on which a wrong-turn producer holding the turn last sealed too early."""
        self.bid_ordering = bid_ordering
        self.mempool = mempool
        self.signer = signer
        self.announce = announce
        self.options = options
        self._head_moved = asyncio.Event()
        self._stop_sealing = threading.Event()
        chain.subscribe(self._on_new_head)

    def _on_new_head(self, head, orphaned) -> None:
        self._head_moved.set()
        self._stop_sealing.set()

    async def _wait_for_head_change(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._head_moved.wait(), timeout=max(seconds, 0))
        except asyncio.TimeoutError:
            pass

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._head_moved.clear()
            self._stop_sealing.clear()
            parent = self.chain.head
            mode = self.misbehaviour.mode if self.misbehaviour else None
            when = self.chain.engine.production_time(self.chain, parent, self.signer.address)
            earliest = parent.timestamp + self.chain.genesis.block_time
            eager = mode in EAGER and (when is None or when > earliest)
            if eager:
                when = earliest  # byzantine: a turn that is not ours, taken as early as any could be
            elif mode == "wrong-turn" and parent.hash != self._early:
                # Byzantine, holding the turn (a scored engine's drawn producer holds its slot's):
                # once on each parent, a block a second before the turn comes; then the lawful one.
                self._early = parent.hash
                eager, when = True, earliest - 1
            if when is None:
                # Not this signer's turn at any time on this parent (it signed too recently):
                # wait for the head to move, re-checking every block time.
                await self._wait_for_head_change(self.chain.genesis.block_time)
                continue
            await self._wait_for_head_change(when - self.chain.clock())
            if self.chain.head.hash != parent.hash:
                continue
            if mode == "withhold":
                if parent.hash != self._withheld:
                    self._withheld = parent.hash  # a turn let pass, counted once however long it lasts
                    self.misbehaviour.sent()
                await self._wait_for_head_change(self.chain.genesis.block_time)
                continue
            # A wrong turn is stamped at the earliest time, not the late one a lagging node would
            # stamp: late enough, it would be a scored engine's lawful fallback (found by testnets/poeg.toml).
            timestamp = when if eager else max(when, int(self.chain.clock()))
            executed = build_block(self.chain, self.mempool, self.signer, timestamp, self.bid_ordering)
            if mode in CORRUPTING:
                await self._announce_bad(loop, executed.block, mode)
                continue
            header = await self._seal(loop, executed.block.header)
            if header is None:
                continue  # the head moved while sealing: this block is stale
            if eager and not self._lawful(header, parent):
                await self._announce_bad(loop, executed.sealed(header).block, None)
                continue
            twin = self._unsealed_twin(parent, header.timestamp + 1) if mode == "equivocate" else None
            executed = executed.sealed(header)
            commit(self.chain, executed)
            if self.announce is not None:
                self.announce(executed.block)
                if twin is not None:
                    await self._equivocate(loop, twin)
            await asyncio.sleep(0)

    async def _seal(self, loop, header, stop: threading.Event | None = None):
        """`header` sealed in a worker thread; None if `stop` (by default: the head moved) was set."""
        stop = stop or self._stop_sealing
        try:
            sealed = await loop.run_in_executor(None, self.chain.engine.seal, header, self.signer, stop, self.options)
        except asyncio.CancelledError:
            # The node is stopping: end the search too, or the interpreter's exit waits for the
            # executor's thread until it finds a seal (seconds under PoW; found by `gridnode testnet`).
            stop.set()
            raise
        return None if sealed is None or stop.is_set() else sealed

    def _lawful(self, header, parent) -> bool:
        """Byzantine wrong-turn: whether the early block is one the engine allows after all (a PoA
        signer out of turn may seal at once); then it is produced like any other."""
        try:
            self.chain.engine.verify_header(self.chain, header, parent)
        except InvalidBlock:
            return False
        return True

    async def _announce_bad(self, loop, block: Block, mode: str | None) -> None:
        """Byzantine: announce a block honest nodes must refuse (damaged by `mode`, or sealed out
        of turn), and keep it off our own chain."""
        header = block.header
        if mode is not None:
            header = await loop.run_in_executor(None, corrupt, self.chain.engine, header, mode, self.signer,
                                                self._stop_sealing)
        if header is not None and self.announce is not None:
            log.warning("byzantine: announcing a bad block", extra={"number": header.number,
                                                                    "mode": mode or "wrong-turn"})
            self.announce(Block(header, block.transactions))
            self.misbehaviour.sent()
        await self._wait_for_head_change(self.chain.genesis.block_time)

    def _unsealed_twin(self, parent, timestamp: int) -> Block | None:
        """Byzantine: a second block on `parent` without the pool's transactions (but with any the
        engine needs), built while `parent` is still the head; None if the engine will not have it."""
        try:
            return build_block(self.chain, Mempool(self.chain.chain_id, self.chain.genesis.gas_limit), self.signer,
                               timestamp).block
        except InvalidBlock as exc:
            log.warning("byzantine: no twin", extra={"number": parent.number + 1, "reason": str(exc)})
            return None

    async def _equivocate(self, loop, twin: Block) -> None:
        """Byzantine: seal the twin (the head has moved to its sibling, so with a stop of its own)
        and announce it too."""
        header = await self._seal(loop, twin.header, threading.Event())
        if header is not None:
            log.warning("byzantine: announcing a twin", extra={"number": header.number})
            self.announce(Block(header, twin.transactions))
            self.misbehaviour.sent()
