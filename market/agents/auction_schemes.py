"""Paper 004's running schemes (§IV-C) as agents that act on the chain's block clock, through
JSON-RPC with their own keys, like any wallet:

- RS1, the centralised approach: `ScheduledAuctions` is the VPP operator (P2P_ETC) opening an
  auction every `every_blocks` blocks, each `duration_blocks` long, and collecting the binding
  bid of each one once it has ended (`gridnode market operator`).
- RS2, the secure approach: `OwnAuction` is a prosumer with energy to sell opening its own
  auction from its own key, and collecting the binding bid after the end
  (`gridnode agent auctioneer`).
- RS3, the economy approach: both open their auctions through the `AuctionFactory` (no
  deployment gas), and `Bidder` finds auctions by the factory's queries (`auctionCount`,
  `auctionAt`), bids on the open ones up to its limit, and withdraws what it is owed after the
  end (`gridnode agent bidder`).

Blocks are the unit of time: an auction accepts bids in blocks startBlock..endBlock inclusive,
and pays out from block endBlock + 1. An agent's `step_block(n)` is called when the head is
block `n`, so the transactions it sends are mined in block n + 1 or later. Amounts are elecoin
wei, integers. Every action is reported as an event (`opened`, `bid`, `outbid`, `won`, `lost`,
`withdrawn`, `unsold`, `missed`, `rejected`, `error`, …)."""
from __future__ import annotations

import threading
from typing import Callable

from web3.exceptions import Web3RPCError

from market.agents.auctions import (FACTORY, AuctionView, auctions_of, instance, open_auction,
                                    read_auction, settle_energy, withdraw)
from market.agents.client import Agent, AgentError, MarketClient, Reporter

ZERO = "0x" + "00" * 20


def owed_to(view: AuctionView, account: str, funds: int) -> int:
    """What `account`, holding `funds` in an auction that has ended or was cancelled, may
    withdraw (Algorithm 1's pull): a loser everything, the winner what is left above the
    binding bid (all of it once the owner has been paid from it), everyone all after a cancel."""
    if view.canceled or view.highest_bidder != account:
        return funds
    return funds if view.owner_has_withdrawn else funds - view.highest_binding_bid


def withdrawn_amount(client: MarketClient, receipt, address: str) -> int:
    return client.event(receipt, instance(address), "LogWithdrawal")["amount"]


class BlockAgent(Agent):
    """An agent driven by block numbers rather than market hours: `run_blocks` calls
    `step_block(number)` each time the head moves, until `stop` is set or the agent is done."""

    def __init__(self, client: MarketClient, report: Reporter) -> None:
        super().__init__(client, None, report)

    def step_block(self, block_number: int) -> None:
        raise NotImplementedError

    def step(self, timestamp: int) -> None:
        raise TypeError(f"{type(self).__name__} steps on block numbers: call step_block or run_blocks")

    def summary(self) -> dict:
        """What the agent did, for the `stopped` event."""
        return {}

    def run(self, hours: int | None = None, poll: float = 0.5, stop: threading.Event | None = None) -> None:
        if hours is not None:
            raise ValueError(f"{type(self).__name__} counts blocks, not market hours")
        self.run_blocks(stop, poll)

    def run_blocks(self, stop: threading.Event | None = None, poll: float = 0.25) -> None:
        stop = stop or threading.Event()
        last = None
        self.report("started", block=self.client.w3.eth.block_number)
        while not stop.is_set() and not self.done:
            try:
                number = self.client.w3.eth.block_number
                if number != last:
                    last = number
                    self.step_block(number)
            except AgentError as exc:
                self.report("error", reason=str(exc))
            except (OSError, ValueError, Web3RPCError) as exc:
                self.report("error", reason=f"node unreachable or refused: {exc}")
            if not self.done:
                stop.wait(poll)
        self.report("stopped", **self.summary())


class _Auctioneer(BlockAgent):
    """An owner of auctions: opens them through the factory and, once each has ended, pulls
    its binding bid (or notes that nobody bid).

    With `energy_wh`, each auction sells that many Wh of energy tokens, escrowed on chain from
    the owner when it opens (`createAuctionWithEnergy`); once the auction has ended the agent
    calls `settleEnergy`, which hands the lot to the winner, or back to the owner when nobody
    bid or the auction was cancelled."""

    def __init__(self, client: MarketClient, report: Reporter, increment: int, duration_blocks: int,
                 start_delay: int = 1, energy_wh: int = 0) -> None:
        super().__init__(client, report)
        if energy_wh < 0:
            raise ValueError("the energy on sale is a whole number of Wh, at least 0")
        if increment < 0:
            raise ValueError("the bid increment is a whole number of wei, at least 0")
        if duration_blocks < 2:
            raise ValueError("an auction lasts at least 2 blocks (its start block is before its end block)")
        if start_delay < 1:
            raise ValueError("the start delay is at least 1 block (the auction opens in a later block)")
        self.increment = increment
        self.duration_blocks = duration_blocks
        self.start_delay = start_delay
        self.energy_wh = energy_wh
        self.opened: list[str] = []
        """Auction addresses, in the order they were opened."""
        self.collected: dict[str, int] = {}
        """Auction -> the binding bid withdrawn from it (0: nobody bid, or it was cancelled)."""
        self._ends: dict[str, int] = {}
        self.energy: dict[str, int] = {}
        """Auction -> the Wh it sells (auctions this agent opened with energy_wh)."""
        self.delivered: dict[str, int] = {}
        """Auction -> the Wh its settlement handed to the winner (0: the lot came back)."""

    def open(self, start: int, end: int) -> str:
        if self.energy_wh:
            held = self.client.view("EnergyToken", "balanceOf", self.client.address)
            if held < self.energy_wh:
                raise AgentError(f"cannot sell {self.energy_wh} Wh: holds {held} Wh of energy tokens")
        address = open_auction(self.client, self.increment, start, end, self.energy_wh)
        self.opened.append(address)
        self._ends[address] = end
        if self.energy_wh:
            self.energy[address] = self.energy_wh
        self.report("opened", auction=address, startBlock=start, endBlock=end, increment=self.increment,
                    energyWh=self.energy_wh)
        return address

    def deliver(self, address: str) -> None:
        """Settle the auction's energy lot on chain (once): to the winner, or back to the owner."""
        wh = self.energy.get(address, 0)
        if wh and address not in self.delivered:
            receipt = settle_energy(self.client, address)
            to = self.client.event(receipt, instance(address), "LogEnergySettled")["to"]
            sold = to != self.client.address
            self.delivered[address] = wh if sold else 0
            self.report("delivered" if sold else "returned", auction=address, energyWh=wh, to=to)

    def adopt_earlier(self) -> list[str]:
        """Take over the collection of this account's earlier auctions (the factory's
        `auctionsOf`) whose binding bid has not been withdrawn: an operator that was stopped
        and started again still collects what it is owed. Returns the adopted addresses."""
        adopted = []
        for address in auctions_of(self.client, self.client.address):
            if address in self._ends:
                continue
            view = read_auction(self.client, address)
            if view.canceled or view.owner_has_withdrawn or view.highest_binding_bid == 0:
                continue
            self._ends[address] = view.end_block
            adopted.append(address)
            self.report("adopted", auction=address, endBlock=view.end_block, bindingBid=view.highest_binding_bid)
        return adopted

    def pending(self) -> list[str]:
        """Auctions opened (or adopted) and not collected yet."""
        return [a for a in self._ends if a not in self.collected]

    def collect(self, block_number: int) -> None:
        """Withdraw the binding bid of every auction whose end block is behind `block_number`."""
        for address in [a for a in self.pending() if self._ends[a] <= block_number]:
            view = read_auction(self.client, address)
            if view.canceled or view.highest_bidder == ZERO or view.highest_binding_bid == 0:
                self.collected[address] = 0
                self.report("canceled" if view.canceled else "unsold", auction=address)
                self.deliver(address)
                continue
            if not view.owner_has_withdrawn:
                amount = withdrawn_amount(self.client, withdraw(self.client, address), address)
                self.report("withdrawn", auction=address, amount=amount, winner=view.highest_bidder)
            self.deliver(address)
            self.collected[address] = view.highest_binding_bid

    def summary(self) -> dict:
        return {"opened": len(self.opened), "collected": sum(1 for v in self.collected.values() if v),
                "unsold": sum(1 for v in self.collected.values() if not v),
                "pending": len(self.pending()), "income": sum(self.collected.values()),
                "deliveredWh": sum(self.delivered.values())}


class ScheduledAuctions(_Auctioneer):
    """RS1: the operator's schedule. The k-th auction (k = 0, 1, …) starts at block
    s0 + k·every_blocks, where s0 = (the first block seen) + start_delay, and ends at
    start + duration_blocks - 1; it is opened `start_delay` blocks before its start. A slot the
    agent could not open in time (its end block reached, or the factory refused) is reported
    `missed` and the next slot is used. With `count`, the agent stops after opening `count`
    auctions and is done once every one is collected. With `adopt` (the default), it first takes over the collection of the account's
    earlier auctions that still owe it a binding bid (see `adopt_earlier`)."""

    kind = "auction-operator"

    def __init__(self, client: MarketClient, report: Reporter, every_blocks: int, duration_blocks: int,
                 increment: int, start_delay: int = 1, count: int | None = None, adopt: bool = True,
                 energy_wh: int = 0) -> None:
        super().__init__(client, report, increment, duration_blocks, start_delay, energy_wh)
        if every_blocks < 1:
            raise ValueError("auctions open every 1 block or more")
        if count is not None and count < 1:
            raise ValueError("the count of auctions is at least 1")
        self.every_blocks = every_blocks
        self.count = count
        self.adopt = adopt
        self.scheduled = 0
        """Schedule slots whose turn has come (an auction opened, or missed)."""
        self.first_start: int | None = None

    def next_start(self) -> int:
        return self.first_start + self.scheduled * self.every_blocks

    def step_block(self, block_number: int) -> None:
        if self.first_start is None:
            self.first_start = block_number + self.start_delay
            if self.adopt:
                self.adopt_earlier()
        # Opening is due at a block; collecting can wait: open first.
        while not self.all_opened() and self.next_start() - self.start_delay <= block_number:
            start = self.next_start()
            end = start + self.duration_blocks - 1
            self.scheduled += 1
            try:
                if end <= block_number + 1:
                    raise AgentError(f"the agent is at block {block_number}, too late for this auction")
                self.open(start, end)
            except AgentError as exc:
                self.report("missed", startBlock=start, endBlock=end, reason=str(exc))
        self.collect(block_number)
        if self.all_opened() and not self.pending():
            self.done = True

    def all_opened(self) -> bool:
        return self.count is not None and len(self.opened) >= self.count


class OwnAuction(_Auctioneer):
    """RS2: a seller opens its own auction from its own key at the first block it sees
    (start = block + start_delay, end = start + duration_blocks - 1), and is done once it has
    collected the binding bid after the end."""

    kind = "auctioneer"

    def step_block(self, block_number: int) -> None:
        if not self.opened:
            start = block_number + self.start_delay
            self.open(start, start + self.duration_blocks - 1)
            return
        self.collect(block_number)
        if not self.pending():
            self.done = True


class Bidder(BlockAgent):
    """A bidder in every auction the factory made (or that `auctions()` lists), except its own:
    while an auction is open and it does not lead, it raises its total to a step above the
    highest bid (the leader's ceiling is public), at most `max_total` wei per auction; a total
    below the leader's still raises the price the leader pays (the binding bid). After the end
    it reports `won` (at the binding bid) or `lost`, and withdraws what it is owed. `step`
    defaults to the auction's increment (1 wei if that is 0)."""

    kind = "bidder"

    def __init__(self, client: MarketClient, report: Reporter, max_total: int, step: int | None = None,
                 auctions: Callable[[], list[str]] | None = None) -> None:
        super().__init__(client, report)
        if max_total < 1:
            raise ValueError("a bidder's limit is at least 1 wei")
        if step is not None and step < 1:
            raise ValueError("a bid step is at least 1 wei")
        self.max_total = max_total
        self.step = step
        self._auctions = auctions or self._from_factory
        self._known: list[str] = []
        self._seen: list[str] = []
        self.finished: dict[str, str] = {}
        """Auction -> how it ended for this bidder: won, lost, unbid, own or canceled."""
        self.leading: set[str] = set()
        self.bids = 0
        self.bid_wei = 0
        self.withdrawn_wei = 0
        self.paid_wei = 0

    def _from_factory(self) -> list[str]:
        """RS3's query: the auctions the factory made, read incrementally."""
        count = self.client.view(FACTORY, "auctionCount")
        for index in range(len(self._known), count):
            self._known.append(self.client.view(FACTORY, "auctionAt", index))
        return list(self._known)

    def active(self) -> list[str]:
        """Auctions seen and not yet finished for this bidder."""
        return [a for a in self._seen if a not in self.finished]

    def step_block(self, block_number: int) -> None:
        self._seen = self._auctions()
        for address in self.active():
            view = read_auction(self.client, address)
            if view.owner == self.client.address:
                self.finished[address] = "own"
            elif view.canceled or view.end_block <= block_number:
                self._settle(view)
            elif view.start_block <= block_number + 1:
                self._bid(view)

    def _bid(self, view: AuctionView) -> None:
        address, me = view.address, self.client.address
        if view.highest_bidder == me:
            if address not in self.leading:
                self.leading.add(address)
                self.report("leading", auction=address, bindingBid=view.highest_binding_bid,
                            highestBid=view.highest_bid)
            return
        if address in self.leading:
            self.leading.discard(address)
            self.report("outbid", auction=address, leader=view.highest_bidder, bindingBid=view.highest_binding_bid)
        funds = self.client.view(instance(address), "fundsByBidder", me)
        step = self.step or view.bid_increment or 1
        total = min(self.max_total, max(view.highest_bid, view.highest_binding_bid) + step)
        if total <= view.highest_binding_bid or total <= funds:
            return  # priced out: the binding bid has reached this bidder's limit
        try:
            receipt = self.client.send(instance(address), "placeBid", value=total - funds)
        except AgentError as exc:
            self.report("rejected", auction=address, total=total, reason=str(exc))
            return
        log = self.client.event(receipt, instance(address), "LogBid")
        self.bids += 1
        self.bid_wei += total - funds
        self.report("bid", auction=address, value=total - funds, total=total, leader=log["highestBidder"],
                    bindingBid=log["highestBindingBid"], block=receipt["blockNumber"])
        if log["highestBidder"] == me:
            self.leading.add(address)

    def _settle(self, view: AuctionView) -> None:
        address, me = view.address, self.client.address
        funds = self.client.view(instance(address), "fundsByBidder", me)
        if view.canceled:
            outcome = "canceled"
        elif view.highest_bidder == me:
            outcome = "won"
        else:
            outcome = "lost" if funds or address in self.leading else "unbid"
        owed = owed_to(view, me, funds)
        if owed > 0:
            amount = withdrawn_amount(self.client, withdraw(self.client, address), address)
            self.withdrawn_wei += amount
            self.report("withdrawn", auction=address, amount=amount)
        if outcome == "won":
            self.paid_wei += view.highest_binding_bid
            self.report("won", auction=address, price=view.highest_binding_bid, owner=view.owner)
        elif outcome != "unbid":
            self.report(outcome, auction=address, winner=view.highest_bidder, price=view.highest_binding_bid)
        self.leading.discard(address)
        self.finished[address] = outcome

    def summary(self) -> dict:
        outcomes = list(self.finished.values())
        return {"bids": self.bids, "bidWei": self.bid_wei, "won": outcomes.count("won"),
                "lost": outcomes.count("lost"), "paidWei": self.paid_wei, "withdrawnWei": self.withdrawn_wei,
                "active": len(self.active())}
