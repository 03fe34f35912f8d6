"""Pending transactions: per-sender nonce order, fee-priced replacement, a
bounded size with eviction, and a reason for every rejection.

The pool knows nothing of blocks or RPC; it is checked against a `State`
(the head) that the caller passes in."""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterator

from vm.state import State
from vm.transactions import Transaction
from vm.transition import TransactionRejected, check_sender, check_transaction_static, upfront_cost
from vm.types import Address

PRICE_BUMP_PERCENT = 10
"""A replacement must raise both fee cap and tip by this much, as in go-ethereum."""


@dataclass(frozen=True)
class MempoolLimits:
    max_transactions: int = 50_000
    max_per_sender: int = 4_096
    """Also the largest nonce gap accepted ahead of the sender's account nonce."""


class Mempool:
    def __init__(self, chain_id: int, block_gas_limit: int, limits: MempoolLimits = MempoolLimits()) -> None:
        self.chain_id = chain_id
        self.block_gas_limit = block_gas_limit
        self.limits = limits
        self._by_hash: dict[bytes, Transaction] = {}
        self._by_sender: dict[Address, dict[int, Transaction]] = {}
        self._spend: dict[Address, int] = {}
        """Sum of upfront costs of each sender's pooled transactions, as go-ethereum tracks it."""

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> Transaction | None:
        return self._by_hash.get(tx_hash)

    def add(self, tx: Transaction, state: State, base_fee: int) -> bool:
        """Admit `tx` or raise TransactionRejected. Returns False if it was already known."""
        if tx.hash in self._by_hash:
            return False
        check_transaction_static(tx, self.chain_id, self.block_gas_limit)
        check_sender(state, tx)
        account = state.get_account(tx.sender)
        if tx.nonce < account.nonce:
            raise TransactionRejected(f"nonce too low: next nonce {account.nonce}, tx nonce {tx.nonce}")
        if tx.nonce >= account.nonce + self.limits.max_per_sender:
            raise TransactionRejected(
                f"nonce too high: tx nonce {tx.nonce} is more than {self.limits.max_per_sender} ahead of {account.nonce}")
        if tx.max_fee_per_gas < base_fee:
            raise TransactionRejected(
                f"max fee per gas less than block base fee: maxFeePerGas {tx.max_fee_per_gas}, baseFee {base_fee}")
        queue = self._by_sender.get(tx.sender, {})
        replaced = queue.get(tx.nonce)
        if replaced is not None and not _outbids(tx, replaced):
            raise TransactionRejected("replacement transaction underpriced")
        committed = self._spend.get(tx.sender, 0) - (upfront_cost(replaced) if replaced else 0)
        if account.balance < committed + upfront_cost(tx):
            raise TransactionRejected(
                f"insufficient funds for gas * price + value: balance {account.balance}, "
                f"cost {upfront_cost(tx)}, already pending from this sender {committed}")
        if replaced is None and len(self._by_hash) >= self.limits.max_transactions:
            self._evict_for(tx)
        if replaced is not None:
            self._remove(replaced)
        self._by_sender.setdefault(tx.sender, {})[tx.nonce] = tx
        self._by_hash[tx.hash] = tx
        self._spend[tx.sender] = self._spend.get(tx.sender, 0) + upfront_cost(tx)
        return True

    def _evict_for(self, tx: Transaction) -> None:
        """Make room by dropping the cheapest last-in-line transaction, if `tx` pays more."""
        cheapest = min((queue[max(queue)] for queue in self._by_sender.values()),
                       key=lambda other: (other.max_priority_fee_per_gas, other.max_fee_per_gas))
        if (cheapest.max_priority_fee_per_gas, cheapest.max_fee_per_gas) >= (
                tx.max_priority_fee_per_gas, tx.max_fee_per_gas):
            raise TransactionRejected("txpool is full")
        self._remove(cheapest)

    def _remove(self, tx: Transaction) -> None:
        del self._by_hash[tx.hash]
        queue = self._by_sender[tx.sender]
        del queue[tx.nonce]
        self._spend[tx.sender] -= upfront_cost(tx)
        if not queue:
            del self._by_sender[tx.sender]
            del self._spend[tx.sender]

    def pending_nonce(self, sender: Address, account_nonce: int) -> int:
        """The next nonce a wallet should use: past the sender's gap-free run in the pool."""
        queue = self._by_sender.get(sender, {})
        nonce = account_nonce
        while nonce in queue:
            nonce += 1
        return nonce

    def executable(self, state: State, base_fee: int) -> Iterator[Transaction]:
        """Transactions in the order a producer should try them: highest tip first
        across senders, nonce order within each, stopping at a nonce gap. A caller
        that rejects one transaction ignores that sender's later ones itself."""
        heap = []
        cursors: dict[Address, int] = {}
        for sender, queue in self._by_sender.items():
            nonce = state.get_account(sender).nonce
            tx = queue.get(nonce)
            if tx is not None and tx.max_fee_per_gas >= base_fee:
                cursors[sender] = nonce
                heapq.heappush(heap, (-tx.effective_tip(base_fee), tx.hash, tx))
        while heap:
            _, _, tx = heapq.heappop(heap)
            yield tx
            nonce = cursors[tx.sender] + 1
            following = self._by_sender.get(tx.sender, {}).get(nonce)
            if following is not None and following.max_fee_per_gas >= base_fee:
                cursors[tx.sender] = nonce
                heapq.heappush(heap, (-following.effective_tip(base_fee), following.hash, following))

    def drop(self, tx: Transaction) -> None:
        """Forget a transaction that can never be included (e.g. failed at block time)."""
        if tx.hash in self._by_hash:
            self._remove(tx)

    def prune(self, state: State) -> None:
        """After a new head: drop every transaction whose nonce is now used."""
        for sender in list(self._by_sender):
            nonce = state.get_account(sender).nonce
            for stale in [tx for n, tx in self._by_sender[sender].items() if n < nonce]:
                self._remove(stale)

    def counts(self, state: State) -> tuple[int, int]:
        """(pending, queued): executable in order now, and waiting behind a nonce gap."""
        pending = 0
        for sender, queue in self._by_sender.items():
            nonce = state.get_account(sender).nonce
            while nonce in queue:
                pending += 1
                nonce += 1
        return pending, len(self._by_hash) - pending


def _outbids(new: Transaction, old: Transaction) -> bool:
    bump = 100 + PRICE_BUMP_PERCENT
    return (new.max_fee_per_gas * 100 >= old.max_fee_per_gas * bump
            and new.max_priority_fee_per_gas * 100 >= old.max_priority_fee_per_gas * bump)
