"""The one way transactions enter the node, whether from RPC, gossip or a reorg:
decode, admit to the mempool against the head state, and announce new ones."""
from __future__ import annotations

import logging
from typing import Callable

from node.chain import Chain
from node.mempool import Mempool
from vm.gas import next_base_fee
from vm.transactions import InvalidTransaction, Transaction
from vm.transition import TransactionRejected

log = logging.getLogger("gridnode.txpool")


class TransactionIntake:
    def __init__(self, chain: Chain, mempool: Mempool) -> None:
        self.chain = chain
        self.mempool = mempool
        self.announce: Callable[[bytes], None] | None = None
        """Set by the network: called with the raw bytes of every newly admitted transaction."""
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
        if is_new and not from_network and self.announce is not None:
            self.announce(tx.raw)
        return tx, is_new

    def _after_head_change(self, head, orphaned: list[Transaction]) -> None:
        """Forget what the new head used, and take back what a reorg abandoned."""
        state = self.chain.state()
        self.mempool.prune(state)
        for tx in orphaned:
            try:
                self.mempool.add(tx, state, self.next_base_fee())
            except (InvalidTransaction, TransactionRejected) as exc:
                log.info("orphaned transaction not re-admitted", extra={"tx": "0x" + tx.hash.hex(), "reason": str(exc)})
