"""The one way transactions enter the node, whether from RPC, gossip or a reorg:
decode, admit to the mempool against the head state, and announce new ones."""
from __future__ import annotations

import logging
import time
from typing import Callable

from node.chain import Chain
from node.mempool import Mempool
from node.txjournal import TxJournal
from vm.gas import next_base_fee
from vm.transactions import InvalidTransaction, Transaction
from vm.transition import TransactionRejected

log = logging.getLogger("gridnode.txpool")


REANNOUNCE_AFTER = 6.0
"""Seconds a transaction may sit in the pool before it is gossiped again."""
REANNOUNCE_BATCH = 500


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
        chain.subscribe(self._after_head_change)

    def next_base_fee(self) -> int:
        head = self.chain.head
        return next_base_fee(head.gas_limit, head.gas_used, head.base_fee, self.chain.genesis.min_base_fee)

    def submit(self, raw: bytes, from_network: bool = False) -> tuple[Transaction, bool]:
        """Admit a raw transaction; returns it and whether it was new. New local
        transactions are announced; gossip relays network ones itself.

        Raises InvalidTransaction (malformed, bad signature) or TransactionRejected (the rules)."""
        tx = self.chain.transaction_from_raw(raw)
        if self.chain.transaction_location(tx.hash) is not None:
            return tx, False
        is_new = self.mempool.add(tx, self.chain.state(), self.next_base_fee())
        if is_new:
            self._last_announced[tx.hash] = time.monotonic()
            if not from_network:
                self._local.add(tx.hash)
                if self.journal is not None:
                    self.journal.append(tx.raw)
                if self.announce is not None:
                    self.announce(tx.raw)
        return tx, is_new

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

    def compact(self) -> None:
        """Rewrite the journal with the local transactions still pending."""
        self._local = {h for h in self._local if h in self.mempool}
        if self.journal is not None:
            self.journal.rewrite([self.mempool.get(h).raw for h in sorted(self._local)])

    def reannounce(self, now: float) -> int:
        """Gossip again the transactions still pooled after REANNOUNCE_AFTER seconds.

        Gossip may drop a message, and a transaction sent to a node that had no peers
        at the time was never heard: without this, one sent to a node that does not
        produce blocks could wait forever. Returns how many went out."""
        if self.announce is None:
            return 0
        due = [tx_hash for tx_hash, when in self._last_announced.items() if now - when >= REANNOUNCE_AFTER]
        sent = 0
        for tx_hash in due[:REANNOUNCE_BATCH]:
            tx = self.mempool.get(tx_hash)
            if tx is None:
                del self._last_announced[tx_hash]
                continue
            self.announce(tx.raw)
            self._last_announced[tx_hash] = now
            sent += 1
        return sent

    def _after_head_change(self, head, orphaned: list[Transaction]) -> None:
        """Forget what the new head used, and take back what a reorg abandoned."""
        state = self.chain.state()
        self.mempool.prune(state)
        for tx_hash in [h for h in self._last_announced if h not in self.mempool]:
            del self._last_announced[tx_hash]
        for tx in orphaned:
            try:
                if self.mempool.add(tx, state, self.next_base_fee()):
                    self._last_announced[tx.hash] = 0.0  # abandoned by a reorg: gossip it on the next round
            except (InvalidTransaction, TransactionRejected) as exc:
                log.info("orphaned transaction not re-admitted", extra={"tx": "0x" + tx.hash.hex(), "reason": str(exc)})
