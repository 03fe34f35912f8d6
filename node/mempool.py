"""Pending transactions: per-sender nonce order, fee-priced replacement, a
bounded size with fair eviction, expiry of what waits behind a nonce gap, and a
reason for every rejection.

A sender's transactions from its account nonce on without a gap are *pending*
(executable now); the ones behind a gap are *queued*. Room is counted in slots
of `TX_SLOT_BYTES`, so the limits bound memory as well as numbers. When the pool
is full a newcomer may only push out a transaction that ranks below it: queued
ones rank lowest, then the pending ones a sender holds beyond its
`account_slots`, then the rest; within a rank the one that pays the producer
less now. So nonce-gapped transactions never push out executable ones, and a
flood from many accounts cannot push out other senders' executable transactions
that pay as much (go-ethereum's legacypool keeps the same order by other means).

The pool knows nothing of blocks or RPC; it is checked against a `State`
(the head) that the caller passes in."""
from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from vm.state import State
from vm.transactions import Transaction
from vm.transition import TransactionRejected, check_sender, check_transaction_static, upfront_cost
from vm.types import Address

PRICE_BUMP_PERCENT = 10
"""A replacement must raise both fee cap and tip by this much, as in go-ethereum."""

TX_SLOT_BYTES = 32 * 1024
"""A transaction takes one slot per started 32 KiB of its raw size (1 to 4 slots): go-ethereum's
txSlotSize. Counting slots rather than transactions bounds the pool's memory."""

STALE_CANDIDATES_FACTOR = 2
"""The eviction heap is rebuilt once it holds this many entries per pooled transaction: a
sender's entries are pushed again at every change to it, and old ones are only skipped.
Checked at every change, not only when the pool is full: a stale entry keeps a mined
transaction (up to 128 KiB) alive."""

QUEUED, OVER_SLOTS, WITHIN_SLOTS = 0, 1, 2
"""Eviction ranks, lowest evicted first: behind a nonce gap; pending beyond the sender's
`account_slots`; pending within them."""


@dataclass(frozen=True)
class MempoolLimits:
    """What the pool holds at most. go-ethereum's `--txpool.*` flags of the same names
    (Besu: `--tx-pool-max-size`, `--tx-pool-limit-by-account-percentage`)."""

    global_slots: int = 4096
    """Slots for executable transactions (geth `--txpool.globalslots`, 4096 in the releases that
    documented it; 5,120 since it counts the queue's share as well). Each executable transaction
    may also use the room queued ones leave free: only the sum is enforced at admission, as in geth.
    With the queue's share this bounds the pool at 5,120 × 32 KiB = 160 MiB of raw transactions,
    where the earlier cap of 50,000 transactions of any size allowed 6.4 GB."""
    global_queue: int = 1024
    """Slots for transactions behind a nonce gap, all senders together (geth `--txpool.globalqueue`)."""
    account_slots: int = 16
    """Executable transactions each sender is guaranteed: ones beyond this are evicted first when
    the pool is full (geth `--txpool.accountslots`)."""
    account_queue: int = 64
    """Transactions one sender may have behind a nonce gap (geth `--txpool.accountqueue`)."""
    lifetime: float = 3 * 3600.0
    """Seconds a transaction may wait behind a nonce gap before it is dropped (geth `--txpool.lifetime`, 3h)."""
    max_per_sender: int = 4_096
    """Most transactions one sender may have pooled; also the furthest nonce ahead of its
    account nonce accepted (geth has no such cap; Besu's is a share of the pool)."""

    @property
    def total_slots(self) -> int:
        return self.global_slots + self.global_queue


def slot_count(tx: Transaction) -> int:
    """Slots `tx` occupies: one per started `TX_SLOT_BYTES` of its raw size."""
    return -(-len(tx.raw) // TX_SLOT_BYTES)


class _Sender:
    """One sender's pooled transactions by nonce, with its account nonce as last seen and the
    length of the gap-free run from it (its pending transactions)."""

    __slots__ = ("txs", "nonce", "run", "run_slots", "slots", "spend")

    def __init__(self, nonce: int) -> None:
        self.txs: dict[int, Transaction] = {}
        self.nonce = nonce
        self.run = 0
        self.run_slots = 0
        self.slots = 0
        self.spend = 0
        """Sum of upfront costs of the pooled transactions, as go-ethereum tracks it."""

    @property
    def queued(self) -> int:
        return len(self.txs) - self.run

    def is_pending(self, nonce: int) -> bool:
        return self.nonce <= nonce < self.nonce + self.run

    def put(self, tx: Transaction) -> None:
        self.txs[tx.nonce] = tx
        self.slots += slot_count(tx)
        self.spend += upfront_cost(tx)
        if tx.nonce == self.nonce + self.run:
            self._extend()

    def take(self, tx: Transaction) -> None:
        self._discard(tx)
        if self.is_pending(tx.nonce):
            self.run = tx.nonce - self.nonce
            self.run_slots = sum(slot_count(self.txs[n]) for n in range(self.nonce, tx.nonce))

    def rebase(self, nonce: int) -> list[Transaction]:
        """Move to a new account nonce; returns the transactions it made stale."""
        stale = [tx for n, tx in self.txs.items() if n < nonce]
        for tx in stale:
            self._discard(tx)
        self.nonce, self.run, self.run_slots = nonce, 0, 0
        self._extend()
        return stale

    def _discard(self, tx: Transaction) -> None:
        del self.txs[tx.nonce]
        self.slots -= slot_count(tx)
        self.spend -= upfront_cost(tx)

    def _extend(self) -> None:
        while self.nonce + self.run in self.txs:
            self.run_slots += slot_count(self.txs[self.nonce + self.run])
            self.run += 1


class Mempool:
    def __init__(self, chain_id: int, block_gas_limit: int, limits: MempoolLimits = MempoolLimits(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.chain_id = chain_id
        self.block_gas_limit = block_gas_limit
        self.limits = limits
        self._clock = clock
        """When transactions arrive, for the lifetime of queued ones: the pool is not consensus code."""
        self._by_hash: dict[bytes, Transaction] = {}
        self._by_sender: dict[Address, _Sender] = {}
        self._arrived: dict[bytes, float] = {}
        """Arrival time of each pooled transaction, oldest first."""
        self._slots = 0
        self._pending_slots = 0
        self._base_fee = 0
        """The base fee last given to `add`: what eviction ranks prices by."""
        self._removal_listeners: list[Callable[[Transaction], None]] = []
        self._candidates: list[tuple] = []
        """Eviction candidates as a heap of keys (see `_key`), some stale: pushed whenever a sender
        changes, checked when popped, rebuilt when the base fee changes or stale ones pile up."""
        self._candidates_fee = 0
        """The base fee the candidates' keys were computed at."""

    def __len__(self) -> int:
        return len(self._by_hash)

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> Transaction | None:
        return self._by_hash.get(tx_hash)

    def on_removal(self, listener: Callable[[Transaction], None]) -> None:
        """Call `listener(tx)` whenever a pooled transaction leaves the pool, for whatever reason."""
        self._removal_listeners.append(listener)

    @property
    def queued_slots(self) -> int:
        return self._slots - self._pending_slots

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
        self._base_fee = base_fee
        sender = self._current(tx.sender, account.nonce)
        replaced = sender.txs.get(tx.nonce)
        if replaced is not None and not _outbids(tx, replaced):
            raise TransactionRejected("replacement transaction underpriced")
        committed = sender.spend - (upfront_cost(replaced) if replaced else 0)
        if account.balance < committed + upfront_cost(tx):
            raise TransactionRejected(
                f"insufficient funds for gas * price + value: balance {account.balance}, "
                f"cost {upfront_cost(tx)}, already pending from this sender {committed}")
        queued = tx.nonce > sender.nonce + sender.run
        if queued and replaced is None and sender.queued >= self.limits.account_queue:
            raise TransactionRejected(
                f"account queue full: {sender.queued} transactions of this sender wait behind a nonce gap, "
                f"limit {self.limits.account_queue}")
        rank = QUEUED if queued else _rank_at(tx.nonce - sender.nonce, self.limits.account_slots)
        growth = slot_count(tx) - (slot_count(replaced) if replaced else 0)
        for victim in self._room_for(tx, rank, growth):
            self._remove(victim)
        if replaced is not None:
            self._remove(replaced)
        self._by_sender[tx.sender] = sender  # again, if removing `replaced` emptied it
        self._edit(sender, sender.put, tx)
        self._by_hash[tx.hash] = tx
        self._arrived[tx.hash] = self._clock()
        return True

    def _current(self, address: Address, nonce: int) -> _Sender:
        """The sender's entry brought to its account nonce, or a new one (registered only once
        a transaction is put in it, so a refused one leaves nothing behind)."""
        sender = self._by_sender.get(address)
        if sender is None:
            return _Sender(nonce)
        if sender.nonce != nonce:  # the head moved and prune has not run yet
            self._rebase(address, sender, nonce)
            self._trim_queue(address)
        return sender

    def _overflow(self, rank: int, growth: int) -> int:
        """Slots to free before a transaction of `rank` that grows the pool by `growth` fits."""
        over = self._slots + growth - self.limits.total_slots
        if rank == QUEUED:
            over = max(over, self.queued_slots + growth - self.limits.global_queue)
        return over

    def _room_for(self, tx: Transaction, rank: int, growth: int) -> list[Transaction]:
        """The transactions to evict so `tx` fits, each ranking below it; raises if there are
        not enough. Queued transactions past their lifetime go first, whatever they pay."""
        if self._overflow(rank, growth) <= 0:
            return []
        self._expire(keep=tx.sender)
        need = self._overflow(rank, growth)
        if need <= 0:
            return []
        newcomer = (rank, self._tip(tx))
        victims, freed = [], 0
        for candidate in self._eviction_order(up_to=rank, exclude=tx.sender):
            if (candidate[0], candidate[1]) >= newcomer:
                break
            victims.append(candidate[-1])
            freed += slot_count(candidate[-1])
            if freed >= need:
                return victims
        raise TransactionRejected("txpool is full")

    def _eviction_order(self, up_to: int, exclude: Address | None = None) -> Iterator[tuple]:
        """Pooled transactions of rank `up_to` or lower, but not `exclude`'s, in the order they
        are evicted, as keys (see `_key`), the transaction last.

        Only a sender's last pending transaction is a candidate (then, once it is yielded, the one
        before it), so an eviction never opens a nonce gap; queued ones are all candidates. The
        candidates are kept in a heap between calls, so making room costs a copy of it and a
        few pops, not a pass over the pool."""
        if self._candidates_fee != self._base_fee:
            self._rebuild_candidates()
        heap = self._candidates.copy()
        tails: dict[Address, int] = {}
        """Distance of each sender's last pending transaction once the ones yielded are gone."""
        taken: set[bytes] = set()
        while heap:
            key = heapq.heappop(heap)
            rank, tx = key[0], key[-1]
            if rank > up_to:
                return  # a yielded tail's predecessor never ranks lower, so nothing lower is left
            if tx.sender == exclude or tx.hash in taken or not self._is_candidate(key, tails):
                continue
            taken.add(tx.hash)
            yield key
            if rank != QUEUED:
                distance = -key[3]
                tails[tx.sender] = distance - 1
                if distance > 0:
                    heapq.heappush(heap, self._tail_key(self._by_sender[tx.sender], distance - 1))

    def _is_candidate(self, key: tuple, tails: dict[Address, int]) -> bool:
        """Whether a heap entry still describes its transaction as the pool holds it."""
        rank, tx = key[0], key[-1]
        if self._by_hash.get(tx.hash) is not tx:
            return False
        sender = self._by_sender[tx.sender]
        distance = tx.nonce - sender.nonce
        if distance != -key[3]:
            return False
        if not sender.is_pending(tx.nonce):
            return rank == QUEUED
        return (distance == tails.get(tx.sender, sender.run - 1)
                and rank == _rank_at(distance, self.limits.account_slots))

    def _rebuild_candidates(self) -> None:
        self._candidates = []
        for sender in self._by_sender.values():
            self._candidates.extend(self._candidate_keys(sender))
        heapq.heapify(self._candidates)
        self._candidates_fee = self._base_fee

    def _candidate_keys(self, sender: _Sender) -> Iterator[tuple]:
        if sender.run:
            yield self._tail_key(sender, sender.run - 1)
        if sender.queued:
            yield from (self._key(tx, QUEUED, nonce - sender.nonce)
                        for nonce, tx in sender.txs.items() if not sender.is_pending(nonce))

    def _tail_key(self, sender: _Sender, distance: int) -> tuple:
        return self._key(sender.txs[sender.nonce + distance], _rank_at(distance, self.limits.account_slots), distance)

    def _key(self, tx: Transaction, rank: int, distance: int) -> tuple:
        """Cheapest first; on a tie the lower fee cap, then the one furthest from being executed."""
        return rank, self._tip(tx), tx.max_fee_per_gas, -distance, tx.hash, tx

    def _tip(self, tx: Transaction) -> int:
        """What the transaction pays a producer per gas at the current base fee."""
        return tx.effective_tip(self._base_fee)

    def _edit(self, sender: _Sender, change: Callable, *args):
        """Apply `change` to a sender's queue and keep the pool's slot totals in step."""
        before_slots, before_pending = sender.slots, sender.run_slots
        result = change(*args)
        self._slots += sender.slots - before_slots
        self._pending_slots += sender.run_slots - before_pending
        for key in self._candidate_keys(sender):
            heapq.heappush(self._candidates, key)
        if len(self._candidates) > STALE_CANDIDATES_FACTOR * len(self._by_hash) + self.limits.account_queue:
            self._rebuild_candidates()  # stale keys hold departed transactions alive: amortised O(1)
        return result

    def _rebase(self, address: Address, sender: _Sender, nonce: int) -> None:
        for stale in self._edit(sender, sender.rebase, nonce):
            self._forget(stale)
        if not sender.txs:
            del self._by_sender[address]

    def _remove(self, tx: Transaction) -> None:
        sender = self._by_sender[tx.sender]
        self._edit(sender, sender.take, tx)
        if not sender.txs:
            del self._by_sender[tx.sender]
        self._forget(tx)

    def _forget(self, tx: Transaction) -> None:
        del self._by_hash[tx.hash]
        del self._arrived[tx.hash]
        for listener in self._removal_listeners:
            listener(tx)

    def _expire(self, keep: Address | None = None) -> None:
        """Drop queued transactions older than the lifetime (but not `keep`'s, while one of its
        transactions is being added)."""
        deadline = self._clock() - self.limits.lifetime
        expired = []
        for tx_hash, arrived in self._arrived.items():
            if arrived > deadline:
                break
            tx = self._by_hash[tx_hash]
            if tx.sender != keep and not self._by_sender[tx.sender].is_pending(tx.nonce):
                expired.append(tx)
        for tx in expired:
            self._remove(tx)

    def _trim_queue(self, address: Address) -> None:
        """Evict queued transactions while `address` or the pool holds more than its queue may,
        after a drop or a reorg turned pending ones into queued ones: the sender's furthest
        first, then the lowest-ranked of all."""
        sender = self._by_sender.get(address)
        while sender is not None and sender.queued > self.limits.account_queue:
            self._remove(sender.txs[max(sender.txs)])
        while self.queued_slots > self.limits.global_queue:
            self._remove(next(self._eviction_order(up_to=QUEUED))[-1])

    def pending_nonce(self, sender: Address, account_nonce: int) -> int:
        """The next nonce a wallet should use: past the sender's gap-free run in the pool."""
        queue = self._queue(sender)
        nonce = account_nonce
        while nonce in queue:
            nonce += 1
        return nonce

    def _queue(self, sender: Address) -> dict[int, Transaction]:
        entry = self._by_sender.get(sender)
        return entry.txs if entry is not None else {}

    def executable(self, state: State, base_fee: int) -> Iterator[Transaction]:
        """Transactions in the order a producer should try them: highest tip first
        across senders, nonce order within each, stopping at a nonce gap. A caller
        that rejects one transaction ignores that sender's later ones itself."""
        heap = []
        cursors: dict[Address, int] = {}
        for sender, entry in self._by_sender.items():
            nonce = state.get_account(sender).nonce
            tx = entry.txs.get(nonce)
            if tx is not None and tx.max_fee_per_gas >= base_fee:
                cursors[sender] = nonce
                heapq.heappush(heap, (-tx.effective_tip(base_fee), tx.hash, tx))
        while heap:
            _, _, tx = heapq.heappop(heap)
            yield tx
            nonce = cursors[tx.sender] + 1
            following = self._queue(tx.sender).get(nonce)
            if following is not None and following.max_fee_per_gas >= base_fee:
                cursors[tx.sender] = nonce
                heapq.heappush(heap, (-following.effective_tip(base_fee), following.hash, following))

    def drop(self, tx: Transaction) -> None:
        """Forget a transaction that can never be included (e.g. failed at block time)."""
        if tx.hash in self._by_hash:
            self._remove(tx)
            self._trim_queue(tx.sender)

    def prune(self, state: State) -> None:
        """After a new head: drop every transaction whose nonce is now used, and queued
        ones past their lifetime."""
        moved = []
        for address, sender in list(self._by_sender.items()):
            nonce = state.get_account(address).nonce
            if nonce != sender.nonce:
                self._rebase(address, sender, nonce)
                moved.append(address)
        for address in moved:
            self._trim_queue(address)
        self._expire()

    def counts(self, state: State) -> tuple[int, int]:
        """(pending, queued): executable in order now, and waiting behind a nonce gap."""
        pending = 0
        for sender, entry in self._by_sender.items():
            nonce = state.get_account(sender).nonce
            while nonce in entry.txs:
                pending += 1
                nonce += 1
        return pending, len(self._by_hash) - pending


def _rank_at(distance: int, account_slots: int) -> int:
    """Rank of a pending transaction `distance` nonces past its sender's account nonce."""
    return OVER_SLOTS if distance >= account_slots else WITHIN_SLOTS


def _outbids(new: Transaction, old: Transaction) -> bool:
    bump = 100 + PRICE_BUMP_PERCENT
    return (new.max_fee_per_gas * 100 >= old.max_fee_per_gas * bump
            and new.max_priority_fee_per_gas * 100 >= old.max_priority_fee_per_gas * bump)
