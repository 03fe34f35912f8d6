"""The chain: genesis, fork choice, reorgs, lookups.

A block from elsewhere is verified against the header chain by the engine, then
either stored as a side block (not heavier than the head) or made canonical:
the state is rolled back through the old branch's undo logs to the common
ancestor, the new branch is executed on top, every root is checked, and the
whole switch (state, canonical index, receipts, transaction lookup, head) is
one write batch. Transactions of the abandoned branch are handed back to the
listeners (the mempool) so none is lost silently."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from enum import Enum
from typing import Callable

from consensus.engine import Engine, HeaderFields
from genesis.config import Genesis, GenesisError
from node.cache import (BODY_CACHE_BYTES, LRU, TRANSACTION_CACHE_BYTES, ByteLRU, body_footprint,
                        transaction_footprint)
from node.clock import Clock
from node.state_db import StateDatabase
from node.store import (Store, delete_block, put_block, put_execution, put_side, put_state, set_canonical,
                        set_head, unset_canonical, unset_side, write_genesis_marker)
from vm.blocks import Block, Header, InvalidBlock, Receipt, combine_blooms, decode_transactions
from vm.constants import HISTORY_BLOCKS
from vm.crypto import keccak256
from vm.environment import BlockEnvironment
from vm.gas import next_base_fee
from vm.limits import MAX_EXTRA_DATA
from vm.merkle import StateTree, TreeUpdate, list_root
from vm.pipeline import BlockBuilder, BlockOutput, apply_block
from vm.state import State
from vm.transactions import Transaction, decode_transaction
from vm.transition import TransactionRejected
from vm.types import Address, Hash32

log = logging.getLogger("gridnode.chain")

MAX_FUTURE_SECONDS = 15
MAX_REORG_DEPTH = HISTORY_BLOCKS
"""Undo logs are kept for every block, but a switch deeper than this is refused
(the same bound as served historical state). Its lower end, head - MAX_REORG_DEPTH, is
the reorg horizon: no block at or below it can become canonical, so none is stored there."""
MAX_SIDE_BLOCKS_PER_HEIGHT = 8
"""Non-canonical blocks stored at one height. Honest forks need one or two (an out-of-turn
block racing the in-turn one, a block reorged out); the cap keeps a node that mines or signs
siblings from filling the disk. geth and Besu store every valid side block and rely on PoW
cost or validator keys; a permissioned chain with cheap PoW cannot."""
MAX_SIDE_BLOCKS_PER_PRODUCER = 2
"""Side blocks one producer may have at one height: under PoA a signer sealing more than one
block at a height is equivocating (Clique seals once per turn); the second allows for a
signer that sealed again after a reorg."""
MAX_SIDE_LEAD = MAX_REORG_DEPTH
"""A side block more than this many heights above the head is refused: a branch that long
and still lighter is spam, and the window keeps `orphans` (and the disk) bounded, with the
per-height caps, to 8 x 2048 blocks."""
MAX_BAD_BLOCKS = 1024
"""Hashes of blocks that failed validation or execution for good, with the reason, kept so a
child of one is refused without work and a bad branch is not executed again for every new tip
(geth keeps the last 10 for debug_getBadBlocks; Besu's BadBlockManager keeps 100)."""


class UnknownParent(InvalidBlock):
    """The block's parent is not stored here yet: fetch the gap, then retry."""


class BlockRefused(InvalidBlock):
    """A block we will not store though it may be valid: at or below the reorg horizon, over
    the side-block caps, or stamped too far ahead of our clock. Not relayed, and not held against
    the sender (it may be honest surplus, or our own clock may be the one that is wrong)."""

    def __init__(self, reason: str, ahead: bool = False) -> None:
        super().__init__(reason)
        self.ahead = ahead
        """Stamped too far ahead of our clock: good once the clock catches up or is put right."""


class ImportStatus(Enum):
    KNOWN = "known"
    SIDE = "side"
    """Stored but not canonical: not heavier than the head."""
    HEAD = "head"
    """Became the head (extending it, or by a reorg)."""


@dataclass(frozen=True)
class ExecutedBlock:
    """A block with what running it produced, ready to commit."""

    block: Block
    receipts: tuple[Receipt, ...]
    changes: dict[bytes, bytes | None]
    undo: list[tuple[bytes, bytes | None]]
    tree_update: TreeUpdate

    def sealed(self, header: Header) -> "ExecutedBlock":
        return replace(self, block=Block(header, self.block.transactions))


class _Overlay:
    """Head state seen through pending changes (a rolled-back or half-applied branch)."""

    def __init__(self, changes: dict[bytes, bytes | None], base) -> None:
        self.changes, self.base = changes, base

    def get(self, key: bytes) -> bytes | None:
        if key in self.changes:
            return self.changes[key]
        return self.base.get(key)


class Chain:
    def __init__(self, store: Store, genesis: Genesis, engine: Engine, clock: Clock | None = None) -> None:
        self.store = store
        self.clock = clock or Clock()
        """Wall-clock seconds for the future-block bound and the producer's timing."""
        self.genesis = genesis
        self.engine = engine
        self.chain_id = genesis.chain_id
        self.contracts = genesis.contracts
        self.state_db = StateDatabase(store)
        self._headers = LRU(8192)
        self._receipts = LRU(64)
        self._bodies = ByteLRU(BODY_CACHE_BYTES, body_footprint)
        self._bad_blocks = LRU(MAX_BAD_BLOCKS)
        self._transactions = ByteLRU(TRANSACTION_CACHE_BYTES, transaction_footprint)
        """Decoded transactions while the pool holds them, so the block that carries one does not
        recover its sender again; never what was merely decoded, nor what was already mined."""
        self._listeners: list[Callable[[Header, list[Transaction]], None]] = []
        if store.genesis_hash() is None:
            self._write_genesis()
        expected = self._genesis_block().hash
        if self.genesis_block_hash() != expected:
            raise GenesisError(f"data dir holds chain 0x{self.genesis_block_hash().hex()}, "
                               f"the genesis file makes 0x{expected.hex()}")
        self.head = self.header_by_hash(store.head_hash())
        self.orphans: dict[bytes, Address] = {
            block_hash: Address(producer) for _, block_hash, producer in store.side_blocks()}
        """Stored blocks that are not canonical (side blocks and reorged-out ones), by producer:
        the store's side index, so bounded by the side-block caps and the reorg horizon."""
        log.info("chain open", extra={"head": self.head.number, "hash": "0x" + self.head.hash.hex()})

    def subscribe(self, listener: Callable[[Header, list[Transaction]], None]) -> None:
        """Call `listener(new_head, orphaned_transactions)` after every head change."""
        self._listeners.append(listener)

    # -- genesis ----------------------------------------------------------
    def _genesis_changes(self) -> dict[bytes, bytes | None]:
        state = State(_Overlay({}, _Nothing()))
        self.genesis.write_state(state)
        return state.changes()

    def _genesis_block(self) -> Block:
        return self.genesis.block(StateTree.from_items(self._genesis_changes().items()).root)

    def _write_genesis(self) -> None:
        changes = self._genesis_changes()
        update = self.state_db.tree.prepare(changes)
        block = self.genesis.block(update.root)
        with self.store.batch() as batch:
            write_genesis_marker(batch, block.hash, self.genesis.to_json().encode())
            put_block(batch, block.header, block.encode_body(), self.engine.weight(block.header))
            put_execution(batch, block.hash, [], [])
            set_canonical(batch, 0, block.hash, [])
            put_state(batch, changes)
            set_head(batch, block.hash)
        self.state_db.applied(changes, update)

    def genesis_block_hash(self) -> Hash32:
        return self.store.genesis_hash()

    # -- ChainReader --------------------------------------------------------
    def header_by_hash(self, block_hash: bytes) -> Header | None:
        header = self._headers.get(block_hash)
        if header is None:
            header = self.store.header(block_hash)
            if header is not None:
                self._headers.put(block_hash, header)
        return header

    def header_by_number(self, number: int) -> Header | None:
        if number < 0 or number > self.head.number:
            return None
        block_hash = self.store.canonical_hash(number)
        return self.header_by_hash(block_hash) if block_hash else None

    def total_weight(self, block_hash: bytes) -> int | None:
        return self.store.total_weight(block_hash)

    # -- lookups ------------------------------------------------------------
    def transactions(self, block_hash: bytes) -> list[Transaction] | None:
        """A stored block's transactions, decoded once and kept for recent blocks."""
        txs = self._bodies.get(block_hash)
        if txs is None:
            raws = self.store.body(block_hash)
            if raws is None:
                return None
            txs = [self.transaction_from_raw(raw) for raw in raws]
            self._bodies.put(block_hash, txs)
        return txs

    def transaction_hashes(self, block_hash: bytes) -> list[Hash32] | None:
        """A stored block's transaction hashes, without decoding its transactions (no sender
        recovery): what eth_getLogs needs of a block, for every block of its range."""
        txs = self._bodies.get(block_hash)
        if txs is not None:
            return [tx.hash for tx in txs]
        raws = self.store.body(block_hash)
        return None if raws is None else [keccak256(raw) for raw in raws]

    def transaction_from_raw(self, raw: bytes) -> Transaction:
        """Decode, reusing a transaction the pool admitted so its sender is recovered once.
        What is decoded here is not cached: a rejected block or transaction leaves nothing behind."""
        tx = self._transactions.get(keccak256(raw))
        return tx if tx is not None else decode_transaction(raw)

    def remember_transaction(self, tx: Transaction) -> None:
        """Keep an admitted transaction decoded, for the block that will carry it."""
        self._transactions.put(tx.hash, tx)

    def forget_transaction(self, tx_hash: bytes) -> None:
        """The pool let the transaction go (mined, replaced, evicted): no block needs it decoded now."""
        self._transactions.pop(tx_hash)

    def receipts(self, block_hash: bytes) -> list[Receipt] | None:
        receipts = self._receipts.get(block_hash)
        if receipts is None:
            receipts = self.store.receipts(block_hash)
            if receipts is not None:
                self._receipts.put(block_hash, receipts)
        return receipts

    def transaction_location(self, tx_hash: bytes) -> tuple[Header, int] | None:
        location = self.store.tx_location(tx_hash)
        if location is None:
            return None
        return self.header_by_hash(location[0]), location[1]

    def block(self, block_hash: bytes) -> Block | None:
        header = self.header_by_hash(block_hash)
        if header is None:
            return None
        return Block(header, tuple(self.transactions(block_hash)))

    def state(self) -> State:
        """A throwaway overlay on the head state (for eth_call, the mempool's checks)."""
        return self.state_db.state()

    # -- the block pipeline (vm/pipeline.py) for building and importing alike -------
    def environment(self, parent: Header, timestamp: int, producer: Address) -> BlockEnvironment:
        base_fee = next_base_fee(parent.gas_limit, parent.gas_used, parent.base_fee, self.genesis.min_base_fee)
        return BlockEnvironment(self.chain_id, parent.number + 1, timestamp, producer, base_fee, parent.gas_limit)

    def start_block(self, parent: Header, timestamp: int, producer: Address,
                    reader=None) -> tuple[BlockBuilder, HeaderFields]:
        """A builder for a child of `parent` on `reader` (the parent's state; by default the
        head's), and the header fields the engine prepares for it."""
        state = State(reader if reader is not None else self.state_db)
        fields = self.engine.prepare(self, parent, producer, timestamp, state)
        return BlockBuilder(state, self.environment(parent, timestamp, producer), self.contracts), fields

    def finish_block(self, parent: Header, builder: BlockBuilder, fields: HeaderFields) -> ExecutedBlock:
        """Complete a block built on the head: end-of-block work, rewards, roots. The header
        comes back unsealed; `ExecutedBlock.sealed` adds the seal."""
        header = self._header(parent, builder.env, fields)
        output = builder.finish(self._finalizer(header))
        executed = self._executed(Block(self._with_results(header, output), output.transactions), output,
                                  builder.state, self.state_db)
        update = self.state_db.tree.prepare(executed.changes)
        block = Block(replace(executed.block.header, state_root=update.root), output.transactions)
        return replace(executed, block=block, tree_update=update)

    def _finalizer(self, header: Header):
        return lambda state, transactions, receipts: self.engine.finalize(self, header, state, transactions, receipts)

    def _header(self, parent: Header, env: BlockEnvironment, fields: HeaderFields) -> Header:
        return Header(
            parent_hash=parent.hash, number=env.number, timestamp=env.timestamp, producer=env.producer,
            state_root=self.state_db.root, transactions_root=list_root([]), receipts_root=list_root([]),
            logs_bloom=combine_blooms([]), gas_limit=env.gas_limit, gas_used=0, base_fee=env.base_fee,
            difficulty=fields.difficulty, extra_data=fields.extra_data)

    @staticmethod
    def _with_results(header: Header, output: BlockOutput) -> Header:
        return replace(header, transactions_root=list_root([tx.raw for tx in output.transactions]),
                       receipts_root=output.receipts_root, logs_bloom=output.bloom, gas_used=output.gas_used)

    @staticmethod
    def _executed(block: Block, output: BlockOutput, state: State, reader) -> ExecutedBlock:
        """What committing a block needs: its receipts, the state changes and their undo log
        (each changed key's value before the block, in key order, so a reorg can roll back)."""
        changes = state.changes()
        undo = [(key, reader.get(key)) for key in sorted(changes)]
        return ExecutedBlock(block, output.receipts, changes, undo, None)

    def commit_built(self, executed: ExecutedBlock) -> None:
        """Store a block this node built on the current head and make it the head."""
        if executed.block.header.parent_hash != self.head.hash:
            raise InvalidBlock("built block no longer extends the head")
        self._commit_branch(self.head, [executed], executed.changes, executed.tree_update)

    # -- importing --------------------------------------------------------
    def import_block(self, block: Block, now: int | None = None) -> ImportStatus:
        """Verify a block from elsewhere and store it; raises InvalidBlock (BlockRefused for a
        block we do not keep) or UnknownParent.

        Nothing is written unless every check passes. A block that fails for good is
        remembered as bad, so its descendants are refused without work."""
        parent = self._verified_parent(block.header, now)
        if parent is None:
            return ImportStatus.KNOWN
        self._check_transactions_root(block.header, [tx.raw for tx in block.transactions])
        return self._store_verified(block, parent)

    def import_wire(self, header: Header, raw_transactions: tuple[bytes, ...], now: int | None = None,
                    durable: bool = True) -> ImportStatus:
        """`import_block` for a block as a peer sent it (see `vm.blocks.parse_block`): the
        header, the seal, the parent and the transactions root are checked before any sender
        is recovered, so a forged block of thousands of transactions costs one seal check.
        `durable=False` leaves its write unsynced (`Store.batch`): for all but the last block of
        a batch a sync round imports, which are fetched again if a power cut loses them."""
        parent = self._verified_parent(header, now)
        if parent is None:
            return ImportStatus.KNOWN
        self._check_transactions_root(header, raw_transactions)
        block = Block(header, decode_transactions(raw_transactions, self.transaction_from_raw))
        return self._store_verified(block, parent, durable)

    def _verified_parent(self, header: Header, now: int | None) -> Header | None:
        """The parent of a new block whose header passes every rule; None if the block is known."""
        if self.header_by_hash(header.hash) is not None:
            return None
        self._refuse_known_bad(header)
        horizon = self.head.number - MAX_REORG_DEPTH
        if header.number <= horizon:
            raise BlockRefused(f"block {header.number} is at or below the reorg horizon {horizon}")
        parent = self.header_by_hash(header.parent_hash)
        if parent is None:
            raise UnknownParent(f"unknown parent 0x{header.parent_hash.hex()} of block {header.number}")
        now = int(self.clock()) if now is None else now
        if header.timestamp > now + MAX_FUTURE_SECONDS:  # may be good later, and may be our clock's fault
            raise BlockRefused(f"block {header.number} is stamped {header.timestamp - now} s ahead of this "
                               f"node's clock (at most {MAX_FUTURE_SECONDS} s)", ahead=True)
        try:
            self._verify_header_rules(header, parent, now)
            self.engine.verify_header(self, header, parent)
        except InvalidBlock as exc:
            self._remember_bad(header.hash, str(exc))
            raise
        return parent

    @staticmethod
    def _check_transactions_root(header: Header, raw_transactions) -> None:
        if header.transactions_root != list_root(list(raw_transactions)):
            raise InvalidBlock("transactions root mismatch")  # not remembered: a relayer can swap a body

    def _store_verified(self, block: Block, parent: Header, durable: bool = True) -> ImportStatus:
        """Store a block whose header checked out: as a side block, or as the new head."""
        header = block.header
        weight = self.store.total_weight(parent.hash) + self.engine.weight(header)
        if not self._heavier(header, weight, self.head, self.store.total_weight(self.head.hash)):
            self._check_side_room(header)
            with self.store.batch() as batch:
                put_block(batch, header, block.encode_body(), weight)
                put_side(batch, header.number, header.hash, header.producer)
            self._headers.put(header.hash, header)
            self.orphans[header.hash] = header.producer
            log.info("side block stored", extra={"number": header.number, "hash": "0x" + header.hash.hex()})
            return ImportStatus.SIDE
        self._switch_to(block, durable)
        return ImportStatus.HEAD

    def _refuse_known_bad(self, header: Header) -> None:
        reason = self._bad_blocks.get(header.hash)
        if reason is not None:
            raise InvalidBlock(f"known bad block: {reason}")
        if self._bad_blocks.get(header.parent_hash) is not None:
            reason = f"parent 0x{header.parent_hash.hex()} is a known bad block"
            self._remember_bad(header.hash, reason)
            raise InvalidBlock(reason)

    def _remember_bad(self, block_hash: bytes, reason: str) -> None:
        self._bad_blocks.put(block_hash, reason)

    def _check_side_room(self, header: Header) -> None:
        """Refuse a side block the caps leave no room for (it may be valid: BlockRefused)."""
        if header.number > self.head.number + MAX_SIDE_LEAD:
            raise BlockRefused(f"side block {header.number} is more than {MAX_SIDE_LEAD} above the head")
        producers = [producer for _, _, producer in self.store.side_blocks(header.number, header.number)]
        if len(producers) >= MAX_SIDE_BLOCKS_PER_HEIGHT:
            raise BlockRefused(f"height {header.number} already has {MAX_SIDE_BLOCKS_PER_HEIGHT} side blocks")
        if producers.count(header.producer) >= MAX_SIDE_BLOCKS_PER_PRODUCER:
            raise BlockRefused(f"{header.producer.to_checksum()} already has {MAX_SIDE_BLOCKS_PER_PRODUCER} "
                               f"side blocks at height {header.number}")

    @staticmethod
    def _heavier(a: Header, weight_a: int, b: Header, weight_b: int) -> bool:
        """Fork choice: more total weight wins; on a tie the lower block, then the lower
        hash (EIP-3436's rules 2 and 4), so every node picks the same head and equal-weight
        out-of-turn blocks cannot split the network."""
        return (weight_a, -a.number, -int.from_bytes(a.hash, "big")) > \
               (weight_b, -b.number, -int.from_bytes(b.hash, "big"))

    def _verify_header_rules(self, header: Header, parent: Header, now: int) -> None:
        """Engine-independent header rules."""
        expected_fee = next_base_fee(parent.gas_limit, parent.gas_used, parent.base_fee, self.genesis.min_base_fee)
        rules = (
            (header.number == parent.number + 1, "block number is not parent + 1"),
            (header.timestamp >= parent.timestamp, "timestamp before parent's"),
            (header.gas_limit == parent.gas_limit, "gas limit changed"),
            (header.gas_used <= header.gas_limit, "gas used above gas limit"),
            (header.base_fee == expected_fee, f"wrong base fee {header.base_fee}, want {expected_fee}"),
            (len(header.extra_data) <= MAX_EXTRA_DATA, f"extra data longer than {MAX_EXTRA_DATA} bytes"),
        )
        for holds, reason in rules:
            if not holds:
                raise InvalidBlock(reason)

    def _switch_to(self, tip: Block, durable: bool = True) -> None:
        """Make `tip` the head: roll back to the common ancestor, execute the new branch, commit once."""
        branch = [tip]
        horizon = self.head.number - MAX_REORG_DEPTH
        ancestor = self.header_by_hash(tip.header.parent_hash)
        while self.store.canonical_hash(ancestor.number) != ancestor.hash:
            if ancestor.number <= horizon:  # the fork point is deeper still (and may be pruned)
                raise BlockRefused(f"reorg to block {tip.header.number} forks below the reorg horizon {horizon}")
            branch.append(self.block(ancestor.hash))
            ancestor = self.header_by_hash(ancestor.parent_hash)
            if ancestor is None:  # pruned when the horizon was higher, before a reorg to a shorter chain
                raise BlockRefused(f"reorg to block {tip.header.number} forks below the reorg horizon")
        branch.reverse()
        if ancestor.number < horizon:
            raise BlockRefused(f"reorg of {self.head.number - ancestor.number} blocks exceeds {MAX_REORG_DEPTH}")
        pending: dict[bytes, bytes | None] = {}
        for number in range(self.head.number, ancestor.number, -1):  # newest first: older undo wins
            for key, previous in self.store.undo_log(self.store.canonical_hash(number)):
                pending[key] = previous
        reader = _Overlay(pending, self.state_db)
        executed, parent, update = [], ancestor, None
        for block in branch:
            try:
                result = self._execute(block, parent, reader)
                pending.update(result.changes)
                update = self.state_db.tree.prepare(pending)
                if update.root != block.header.state_root:
                    raise InvalidBlock(f"state root mismatch: header has 0x{block.header.state_root.hex()}, "
                                       f"computed 0x{update.root.hex()}")
            except InvalidBlock as exc:
                self._forget(block, str(exc))
                if block is not tip:
                    self._remember_bad(tip.hash, f"descends from bad block 0x{block.hash.hex()}")
                raise
            executed.append(replace(result, tree_update=update))
            parent = block.header
        self._commit_branch(ancestor, executed, pending, update, durable)

    def _execute(self, block: Block, parent: Header, reader: _Overlay) -> ExecutedBlock:
        """Run a block on `reader` (its parent's state) and check everything but the state root."""
        header = block.header
        builder, expected = self.start_block(parent, header.timestamp, header.producer, reader)
        if (header.difficulty, header.extra_data) != (expected.difficulty, expected.extra_data):
            raise InvalidBlock(f"engine fields differ from what the engine prepares: difficulty "
                               f"{header.difficulty} (want {expected.difficulty})")
        try:
            output = apply_block(builder, block.transactions, self._finalizer(header))
        except TransactionRejected as exc:
            raise InvalidBlock(f"invalid transaction: {exc}") from None
        checks = (("gas used", header.gas_used, output.gas_used),
                  ("receipts root", header.receipts_root, output.receipts_root),
                  ("logs bloom", header.logs_bloom, output.bloom))
        for name, claimed, value in checks:
            if claimed != value:
                raise InvalidBlock(f"{name} mismatch: header has {_show(claimed)}, computed {_show(value)}")
        return self._executed(block, output, builder.state, reader)

    def _forget(self, block: Block, reason: str) -> None:
        """Remember a block that failed execution as bad, and drop it and every stored block
        built on it in one batch, so none is tried (or left without its parent) again."""
        self._remember_bad(block.hash, reason)
        doomed = self._stored_descendants(block.header)
        with self.store.batch() as batch:
            for number, block_hash in [(block.header.number, block.hash)] + doomed:
                delete_block(batch, number, block_hash)
        self._drop(block.hash)
        for _, block_hash in doomed:
            self._remember_bad(block_hash, f"descends from bad block 0x{block.hash.hex()}")
            self._drop(block_hash)

    def _stored_descendants(self, header: Header) -> list[tuple[int, bytes]]:
        """(number, hash) of stored side blocks built on `header`, height by height through the
        side index (they are non-canonical: the chain never switched to their ancestor)."""
        found, parents, number = [], {header.hash}, header.number
        while parents:
            number += 1
            children = [(number, block_hash) for _, block_hash, _ in self.store.side_blocks(number, number)
                        if self.header_by_hash(block_hash).parent_hash in parents]
            found += children
            parents = {block_hash for _, block_hash in children}
        return found

    def _drop(self, block_hash: bytes) -> None:
        """Forget the in-memory traces of a block deleted from the store."""
        for cache in (self._headers, self._bodies, self._receipts):
            cache.pop(block_hash, None)
        self.orphans.pop(block_hash, None)

    def _restage_side_blocks(self, batch, old_head: Header, abandoned: list[Block],
                             executed: list[ExecutedBlock]) -> tuple[dict[bytes, Address], list[bytes]]:
        """Within a head move's batch: index the abandoned blocks as side blocks, unindex the newly
        canonical ones, and delete every side block the new reorg horizon has passed. Returns
        (new orphans by producer, deleted hashes) for the caller to apply once the batch lands.

        Only the heights the horizon passed in this move are read: below the old head's horizon
        every side block went when the head got there (and none is stored at or below the horizon
        of its day). Only blocks that were side blocks are unindexed: a delete is a LevelDB
        tombstone, and one per block made this range read, and each import, grow with the chain."""
        horizon = executed[-1].block.header.number - MAX_REORG_DEPTH
        canonical = {result.block.hash for result in executed}
        for result in executed:
            if result.block.hash in self.orphans:
                unset_side(batch, result.block.header.number, result.block.hash)
        added, deleted = {}, []
        for old in abandoned:
            if old.header.number > horizon:
                put_side(batch, old.header.number, old.hash, old.header.producer)
                added[old.hash] = old.header.producer
            else:
                delete_block(batch, old.header.number, old.hash)
                deleted.append(old.hash)
        passed_from = max(old_head.number - MAX_REORG_DEPTH + 1, 0)
        for number, block_hash, _ in self.store.side_blocks(passed_from, max(horizon, passed_from - 1)):
            if block_hash not in canonical:
                delete_block(batch, number, block_hash)
                deleted.append(block_hash)
        return added, deleted

    def _commit_branch(self, ancestor: Header, executed: list[ExecutedBlock], changes: dict[bytes, bytes | None],
                       update: TreeUpdate, durable: bool = True) -> None:
        old_head = self.head
        abandoned = [self.block(self.store.canonical_hash(n)) for n in range(ancestor.number + 1, old_head.number + 1)]
        weight = self.store.total_weight(ancestor.hash)
        with self.store.batch(durable) as batch:
            for old in abandoned:
                unset_canonical(batch, old.header.number, [tx.hash for tx in old.transactions])
            for result in executed:
                header = result.block.header
                weight += self.engine.weight(header)
                put_block(batch, header, result.block.encode_body(), weight)
                put_execution(batch, header.hash, list(result.receipts), result.undo)
                set_canonical(batch, header.number, header.hash, [tx.hash for tx in result.block.transactions])
            put_state(batch, changes)
            set_head(batch, executed[-1].block.hash)
            new_orphans, pruned = self._restage_side_blocks(batch, old_head, abandoned, executed)
        self.state_db.applied(changes, update)
        for result in executed:
            self._headers.put(result.block.hash, result.block.header)
            self._receipts.put(result.block.hash, list(result.receipts))
            self._bodies.put(result.block.hash, list(result.block.transactions))
        self.head = executed[-1].block.header
        for result in executed:
            self.orphans.pop(result.block.hash, None)
        for block_hash in pruned:
            self._drop(block_hash)
        self.orphans.update(new_orphans)
        included = {tx.hash for result in executed for tx in result.block.transactions}
        orphaned = [tx for old in abandoned for tx in old.transactions if tx.hash not in included]
        if abandoned:
            log.warning("chain reorganised", extra={"depth": len(abandoned), "new_head": self.head.number,
                                                    "orphaned_txs": len(orphaned)})
        for listener in self._listeners:
            listener(self.head, orphaned)


class _Nothing:
    def get(self, key: bytes) -> None:
        return None


def _show(value) -> str:
    return f"0x{value.hex()}" if isinstance(value, bytes) else str(value)
