"""The one way transactions enter the node, whether from RPC, gossip or a reorg:
decode, admit to the mempool against the head state, and announce new ones.

Only what the pool admitted is kept: its decoded form in the chain's cache (so the
block that carries it is not verified again), when it was last announced, and
whether it was submitted here. All three are forgotten when it leaves the pool, so
none outgrows the pool, and a rejected or mined transaction leaves nothing behind."""
from __future__ import annotations

import logging
import time
from typing import Callable

from node.chain import Chain
from node.mempool import Mempool
from node.txjournal import TxJournal
from vm.gas import next_base_fee
from vm.native.registry import REGISTRY, Role
from vm.state import storage_key
from vm.transactions import InvalidTransaction, Transaction
from vm.transition import TransactionRejected
from vm.types import Address

log = logging.getLogger("gridnode.txpool")


REANNOUNCE_AFTER = 6.0
"""Seconds a transaction may sit in the pool before it is gossiped again."""
REANNOUNCE_BATCH = 500

REGISTRATION_RACE_BLOCKS = 16
"""A sender that held a role at any of the last this many heads may be relayed in good faith
by a peer that has not yet seen the block revoking it; one that held none is refused as the
relaying peer's fault. (geth and Besu have no registry; 16 blocks is well past gossip delay.)"""


class UnregisteredSender(TransactionRejected):
    """The sender holds no role at the head nor held one at any of the last
    REGISTRATION_RACE_BLOCKS heads: no honest node would relay its transactions."""


class TransactionIntake:
    def __init__(self, chain: Chain, mempool: Mempool) -> None:
        self.chain = chain
        self.mempool = mempool
        self.announce: Callable[[bytes], None] | None = None
        """Set by the network: called with the raw bytes of every newly admitted transaction."""
        self._last_announced: dict[bytes, float] = {}
        """When each pooled transaction was last gossiped (by us or by the peer we had it from)."""
        self.journal: TxJournal | None = None
        """Set by the node: where transactions submitted here are kept across restarts."""
        self._local: set[bytes] = set()
        """Pooled transactions submitted here (kept in the journal)."""
        self._recent_roles: tuple[bytes, frozenset[bytes]] = (b"", frozenset())
        """(head hash, registry role keys that were set at some recent head), computed when needed."""
        chain.subscribe(self._after_head_change)
        mempool.on_removal(self._forget)

    def next_base_fee(self) -> int:
        head = self.chain.head
        return next_base_fee(head.gas_limit, head.gas_used, head.base_fee, self.chain.genesis.min_base_fee)

    def submit(self, raw: bytes, from_network: bool = False) -> tuple[Transaction, bool]:
        """Admit a raw transaction; returns it and whether it was new. New local
        transactions are announced; gossip relays network ones itself.

        Raises InvalidTransaction (malformed, bad signature) or TransactionRejected (the
        rules; UnregisteredSender when its sender never was registered lately)."""
        tx = self.chain.transaction_from_raw(raw)
        if self.chain.transaction_location(tx.hash) is not None:
            return tx, False
        is_new = self._admit(tx)
        if is_new:
            self._last_announced[tx.hash] = time.monotonic()
            if not from_network:
                if self.journal is not None:
                    self._journal(tx)
                self._local.add(tx.hash)
                if self.announce is not None:
                    self.announce(tx.raw)
        return tx, is_new

    def _admit(self, tx: Transaction) -> bool:
        """Offer `tx` to the pool at the head; keep it decoded only if it was admitted."""
        if self.chain.engine.is_system_transaction(tx):
            raise TransactionRejected(f"a {self.chain.engine.name} settlement is its producer's own: only the block "
                                      "that settles carries one, and no pool holds it")
        state = self.chain.state()
        try:
            is_new = self.mempool.add(tx, state, self.next_base_fee())
        except TransactionRejected as exc:
            if REGISTRY.role_at(state, tx.sender) is Role.NONE and not self._registered_lately(tx.sender):
                raise UnregisteredSender(str(exc)) from None
            raise
        if is_new:
            self.chain.remember_transaction(tx)
        return is_new

    def _registered_lately(self, sender: Address) -> bool:
        """Whether `sender` held a role at one of the REGISTRATION_RACE_BLOCKS heads before this one.

        The undo log of block n holds the value each key had before it, i.e. at head n-1; the
        role keys set in those logs are read once per head, and only when a sender is refused."""
        head = self.chain.head
        if self._recent_roles[0] != head.hash:
            prefix = storage_key(REGISTRY.address, b"")
            keys = set()
            for number in range(head.number, max(head.number - REGISTRATION_RACE_BLOCKS, 0), -1):
                undo = self.chain.store.undo_log(self.chain.store.canonical_hash(number)) or []
                keys.update(key for key, previous in undo if previous and key.startswith(prefix))
            self._recent_roles = (head.hash, frozenset(keys))
        return storage_key(REGISTRY.address, REGISTRY.slot(b"role", sender)) in self._recent_roles[1]

    def restore(self) -> int:
        """Re-admit the journal's transactions (at start); returns how many are pending again."""
        restored = 0
        for raw in self.journal.load():
            try:
                _, is_new = self.submit(raw)
                restored += is_new
            except (InvalidTransaction, TransactionRejected):
                continue  # mined or made invalid while the node was down
        self.compact()
        return restored

    def _journal(self, tx: Transaction) -> None:
        """Keep a local transaction for a restart, or take it back out of the pool and refuse it:
        a client is never told "not accepted" about a transaction the node would still mine."""
        try:
            self.journal.append(tx.raw)
        except OSError as exc:
            self.mempool.drop(tx)
            raise TransactionRejected(f"the node could not keep the transaction ({exc.strerror or exc}): "
                                      "not accepted, send it again later or to another node") from None

    def compact(self) -> None:
        """Rewrite the journal with the local transactions still pending; if the disk refuses,
        the last journal stays (the pending ones were each appended to it already)."""
        if self.journal is not None:
            try:
                self.journal.rewrite([self.mempool.get(h).raw for h in sorted(self._local)])
            except OSError as exc:
                log.warning("could not compact the transaction journal; keeping the last one", extra={"error": str(exc)})

    def reannounce(self, now: float) -> int:
        """Gossip again the transactions still pooled after REANNOUNCE_AFTER seconds.

        Gossip may drop a message, and a transaction sent to a node that had no peers
        at the time was never heard: without this, one sent to a node that does not
        produce blocks could wait forever. Returns how many went out."""
        if self.announce is None:
            return 0
        due = [tx_hash for tx_hash, when in self._last_announced.items() if now - when >= REANNOUNCE_AFTER]
        for tx_hash in due[:REANNOUNCE_BATCH]:
            self.announce(self.mempool.get(tx_hash).raw)
            self._last_announced[tx_hash] = now
        return min(len(due), REANNOUNCE_BATCH)

    def _forget(self, tx: Transaction) -> None:
        """The pool let `tx` go (mined, replaced, evicted, expired): so does the intake, and the
        chain's decoded copy goes too (a mined transaction's block is already imported)."""
        self._last_announced.pop(tx.hash, None)
        self._local.discard(tx.hash)
        self.chain.forget_transaction(tx.hash)

    def _after_head_change(self, head, orphaned: list[Transaction]) -> None:
        """Forget what the new head used, and take back what a reorg abandoned."""
        self.mempool.prune(self.chain.state())
        for tx in orphaned:
            try:
                if self._admit(tx):
                    self._last_announced[tx.hash] = 0.0  # abandoned by a reorg: gossip it on the next round
            except (InvalidTransaction, TransactionRejected) as exc:
                log.info("orphaned transaction not re-admitted", extra={"tx": "0x" + tx.hash.hex(), "reason": str(exc)})
