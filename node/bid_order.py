"""The producer's bid-ordering policy: within a block, one English auction's bids go in by
ascending total, so that every bid that tops the one before it lands.

Why. Bidders who act on the same state (the head) send bids whose totals all top the binding
bid they saw; in the tip order of the pool, a higher bid that lands first can push the
binding bid above a lower one that follows, which then reverts `auction: bid too low` (paper
004 lost 27 % of bids at 100 agents this way). Taken in ascending order instead, each bid's
total is at least the one before it, and Algorithm 1 sets the binding bid to at most the
highest total, so a bid strictly above the one before it always lands.

What the producer does (`BidOrder`). A transaction is a *bid* when its `to` holds an
`EnglishAuction` instance (its code marker; one state read) and its data starts with the
`placeBid()` selector (4 bytes, compared first, so a transfer costs one slice). While the
producer walks the pool (tip order, nonce order per sender), it *holds* every bid, and every
later transaction of a sender that has a held one, so a sender's nonce order is kept. After
the other transactions are in, it releases what it holds by a merge over each sender's
next held transaction, smallest key first:

    (auction address, total, sender, nonce)     for a bid, total = funds in the auction + value
    (b"",             0,     sender, nonce)     for a held non-bid (it waits only for its sender)

so the bids of one auction come in ascending total, ties broken by sender address then nonce;
a non-bid goes in as soon as its sender's earlier bids are in. A sender's next key is taken
when it becomes eligible, against the builder's state at that moment; a bidder's total only
changes by its own bids, so for one sender with several bids in one auction each total is
above the one before it and ascending order is its nonce order. Integers and bytes only.

What it is not. It is a producing policy, not a consensus rule: a validator imports a block
whose bids are in any order (the vm applies what it is given), and a node started with
`gridnode start --no-bid-ordering` fills blocks in plain pool order. What a bidder can rely
on: every bid above the auction's highest bid before its block, whose total no other bid of
that auction in the block shares, lands in that block (if the block has room), whatever the
order in which they reached the pool (without the policy, only the highest is sure to); a
bid is held back only within its block, never to a later one. Bids go in after the block's other
transactions, so an owner's `cancelAuction` in the same block comes first."""
from __future__ import annotations

import heapq
from typing import Iterator

from market.contracts.auction import PLACE_BID, EnglishAuction
from vm.native.table import ContractTable
from vm.state import State
from vm.transactions import Transaction
from vm.types import Address

Key = tuple[bytes, int, bytes, int]
"""(auction address or b"" for a non-bid, bid total, sender, nonce): smaller goes in first."""


def bid_auction(contracts: ContractTable, state: State, tx: Transaction) -> Address | None:
    """The auction `tx` bids in, or None if it is not a `placeBid()` to an EnglishAuction."""
    if tx.data[:4] != PLACE_BID or tx.to is None:
        return None
    kind = contracts.by_name(EnglishAuction.name)
    if kind is None or contracts.code_at(state, tx.to) is not kind:
        return None
    return tx.to


class BidOrder:
    """One block's held bids (and the transactions that wait behind them, per sender)."""

    def __init__(self, contracts: ContractTable) -> None:
        self._contracts = contracts
        self._held: dict[Address, list[Transaction]] = {}
        """Per sender, its held transactions in nonce order (the pool yields them so)."""

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._held.values())

    def hold(self, state: State, tx: Transaction) -> bool:
        """Whether `tx` waits for the release: a bid, or a later transaction of a sender that
        already has one held. A held transaction is kept here; otherwise nothing changes."""
        queue = self._held.get(tx.sender)
        if queue is not None:
            queue.append(tx)
            return True
        if bid_auction(self._contracts, state, tx) is None:
            return False
        self._held[tx.sender] = [tx]
        return True

    def key(self, state: State, tx: Transaction) -> Key:
        auction = bid_auction(self._contracts, state, tx)
        if auction is None:
            return b"", 0, bytes(tx.sender), tx.nonce
        return bytes(auction), EnglishAuction.bid_total(state, auction, tx.sender, tx.value), bytes(tx.sender), tx.nonce

    def release(self, state: State, refused: set[Address]) -> Iterator[Transaction]:
        """The held transactions in the order they go in. `state` is the builder's (read as it
        changes); a sender the caller adds to `refused` (its transaction did not fit or was
        invalid) gets no further transaction from here."""
        heap: list[tuple[Key, int]] = []
        senders = sorted(self._held)
        cursors = [0] * len(senders)
        for index, sender in enumerate(senders):
            heapq.heappush(heap, (self.key(state, self._held[sender][0]), index))
        while heap:
            _, index = heapq.heappop(heap)
            sender = senders[index]
            queue = self._held[sender]
            yield queue[cursors[index]]
            cursors[index] += 1
            if sender not in refused and cursors[index] < len(queue):
                heapq.heappush(heap, (self.key(state, queue[cursors[index]]), index))
