"""The chain: genesis, the head, lookups, and importing blocks atomically.

Two ways in: `commit_built` for a block this node produced and already
executed, and `import_block` for a block from elsewhere, which is verified by
the engine and re-executed before anything is stored. Both end in the same
write batch."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from consensus.engine import Engine
from genesis.config import Genesis, GenesisError
from node.cache import LRU
from node.state_db import StateDatabase
from node.store import Store, write_block, write_genesis_marker
from vm.blocks import Block, Header, InvalidBlock, Receipt, combine_blooms
from vm.crypto import keccak256
from vm.gas import next_base_fee
from vm.merkle import StateTree, TreeUpdate, list_root
from vm.state import State
from vm.transactions import Transaction, decode_transaction
from vm.transition import BlockEnvironment, TransactionRejected, apply_body
from vm.types import Address, Hash32

log = logging.getLogger("gridnode.chain")

MAX_FUTURE_SECONDS = 15
MAX_EXTRA_DATA = 32


@dataclass(frozen=True)
class ExecutedBlock:
    """A block with the results of running it, ready to commit."""

    block: Block
    receipts: tuple[Receipt, ...]
    changes: dict[bytes, bytes | None]
    tree_update: TreeUpdate


class Chain:
    def __init__(self, store: Store, genesis: Genesis, engine: Engine) -> None:
        self.store = store
        self.genesis = genesis
        self.engine = engine
        self.chain_id = genesis.chain_id
        self.state_db = StateDatabase(store)
        self._headers = LRU(4096)
        self._receipts = LRU(64)
        self._transactions = LRU(200_000)
        self._bodies = LRU(64)
        if store.genesis_hash() is None:
            self._write_genesis()
        genesis_hash = self.genesis_block_hash()
        expected = self._genesis_block().hash
        if genesis_hash != expected:
            raise GenesisError(f"data dir holds chain {genesis_hash.hex()}, genesis file makes {expected.hex()}")
        self.head = self.header_by_hash(store.head_hash())
        log.info("chain open", extra={"head": self.head.number, "hash": "0x" + self.head.hash.hex()})

    # -- genesis ----------------------------------------------------------
    def _genesis_state_changes(self) -> dict[bytes, bytes | None]:
        state = State(_EmptyReader())
        self.genesis.write_state(state)
        return state.changes()

    def _genesis_block(self) -> Block:
        root = StateTree.from_items(self._genesis_state_changes().items()).root
        return self.genesis.block(root)

    def _write_genesis(self) -> None:
        changes = self._genesis_state_changes()
        update = self.state_db.tree.prepare(changes)
        block = self.genesis.block(update.root)
        with self.store.batch() as batch:
            write_genesis_marker(batch, block.hash, self.genesis.to_json().encode())
            write_block(batch, block.header, block.encode_body(), [], block.header.difficulty, [], changes, [])
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

    # -- lookups for RPC ----------------------------------------------------
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

    def transaction_from_raw(self, raw: bytes) -> Transaction:
        tx_hash = keccak256(raw)
        tx = self._transactions.get(tx_hash)
        if tx is None:
            tx = decode_transaction(raw)
            self._transactions.put(tx_hash, tx)
        return tx

    def remember_transaction(self, tx: Transaction) -> None:
        """Keep a decoded transaction so its sender is never recovered twice."""
        self._transactions.put(tx.hash, tx)

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
        header = self.header_by_hash(location[0])
        return header, location[1]

    def state(self) -> State:
        """A throwaway overlay on the head state (for eth_call, the mempool's checks)."""
        return self.state_db.state()

    # -- building and importing ----------------------------------------------
    def environment(self, parent: Header, timestamp: int, producer: Address) -> BlockEnvironment:
        base_fee = next_base_fee(parent.gas_limit, parent.gas_used, parent.base_fee, self.genesis.min_base_fee)
        return BlockEnvironment(self.chain_id, parent.number + 1, timestamp, producer, base_fee, parent.gas_limit)

    def seal_executed(self, parent: Header, env: BlockEnvironment, state: State, transactions: list[Transaction],
                      receipts: tuple[Receipt, ...], signer) -> ExecutedBlock:
        """Finish a block whose transactions ran on `state`: rewards, roots, seal."""
        fields = self.engine.prepare(self, parent, env.producer)
        header = Header(
            parent_hash=parent.hash, number=env.number, timestamp=env.timestamp, producer=env.producer,
            state_root=self.state_db.root, transactions_root=list_root([tx.raw for tx in transactions]),
            receipts_root=list_root([r.encode() for r in receipts]),
            logs_bloom=combine_blooms(r.bloom for r in receipts), gas_limit=env.gas_limit,
            gas_used=receipts[-1].cumulative_gas_used if receipts else 0, base_fee=env.base_fee,
            difficulty=fields.difficulty, extra_data=fields.extra_data)
        self.engine.finalize(self, header, state, receipts)
        changes = state.changes()
        update = self.state_db.tree.prepare(changes)
        block = Block(self.engine.seal(replace(header, state_root=update.root), signer), tuple(transactions))
        return ExecutedBlock(block, receipts, changes, update)

    def commit_built(self, executed: ExecutedBlock) -> None:
        """Store a block this node built on the current head and make it the head."""
        header = executed.block.header
        if header.parent_hash != self.head.hash:
            raise InvalidBlock("built block no longer extends the head")
        for tx in executed.block.transactions:
            self.remember_transaction(tx)
        self._commit(executed)

    def import_block(self, block: Block, now: int | None = None) -> None:
        """Verify and execute a block from elsewhere, then store it; raises InvalidBlock.

        Nothing is written unless every check passes."""
        header = block.header
        if self.header_by_hash(header.hash) is not None:
            return
        parent = self.header_by_hash(header.parent_hash)
        if parent is None:
            raise InvalidBlock(f"unknown parent 0x{header.parent_hash.hex()}")
        if parent.hash != self.head.hash:
            raise InvalidBlock("block does not extend the head (side chains arrive with fork choice)")
        self._verify_header_rules(header, parent, int(time.time()) if now is None else now)
        self.engine.verify_header(self, header, parent)
        env = BlockEnvironment(self.chain_id, header.number, header.timestamp, header.producer,
                               header.base_fee, header.gas_limit)
        state = self.state_db.state()
        try:
            output = apply_body(state, env, block.transactions)
        except TransactionRejected as exc:
            raise InvalidBlock(f"invalid transaction: {exc}") from None
        self.engine.finalize(self, header, state, output.receipts)
        changes = state.changes()
        update = self.state_db.tree.prepare(changes)
        checks = (("gas used", header.gas_used, output.gas_used),
                  ("state root", header.state_root, update.root),
                  ("receipts root", header.receipts_root, list_root([r.encode() for r in output.receipts])),
                  ("logs bloom", header.logs_bloom, output.bloom))
        for name, claimed, computed in checks:
            if claimed != computed:
                raise InvalidBlock(f"{name} mismatch: header has {_show(claimed)}, computed {_show(computed)}")
        self._commit(ExecutedBlock(block, output.receipts, changes, update))

    def _verify_header_rules(self, header: Header, parent: Header, now: int) -> None:
        """Engine-independent header rules."""
        expected_fee = next_base_fee(parent.gas_limit, parent.gas_used, parent.base_fee, self.genesis.min_base_fee)
        rules = (
            (header.number == parent.number + 1, "block number is not parent + 1"),
            (header.timestamp >= parent.timestamp, "timestamp before parent's"),
            (header.timestamp <= now + MAX_FUTURE_SECONDS, "timestamp too far in the future"),
            (header.gas_limit == parent.gas_limit, "gas limit changed"),
            (header.gas_used <= header.gas_limit, "gas used above gas limit"),
            (header.base_fee == expected_fee, f"wrong base fee {header.base_fee}, want {expected_fee}"),
            (len(header.extra_data) <= MAX_EXTRA_DATA, "extra data longer than 32 bytes"),
        )
        for holds, reason in rules:
            if not holds:
                raise InvalidBlock(reason)

    def _commit(self, executed: ExecutedBlock) -> None:
        block = executed.block
        parent_weight = self.store.total_weight(block.header.parent_hash)
        weight = parent_weight + self.engine.weight(block.header)
        undo = self.state_db.undo_for(executed.changes)
        with self.store.batch() as batch:
            write_block(batch, block.header, block.encode_body(), list(executed.receipts), weight,
                        [tx.hash for tx in block.transactions], executed.changes, undo)
        self.state_db.applied(executed.changes, executed.tree_update)
        self._headers.put(block.hash, block.header)
        self._receipts.put(block.hash, list(executed.receipts))
        self._bodies.put(block.hash, list(block.transactions))
        self.head = block.header


class _EmptyReader:
    def get(self, key: bytes) -> None:
        return None


def _show(value) -> str:
    return f"0x{value.hex()}" if isinstance(value, bytes) else str(value)
