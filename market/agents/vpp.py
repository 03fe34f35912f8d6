"""Paper 004's VPP agents (§V) trading through JSON-RPC, one process each:
`python -m market.agents.vpp ROLE --rpc URL --key HEX …` with ROLE one of `coordinator`
(P2P_ETC), `ess`, `diesel`, `house0`, `house1`, ….

Every agent computes the same day plan (`market.economics.vpp.plan_day`) and follows the same
block clock: simulated hour `hours[i]` is blocks first + i·B .. first + (i+1)·B − 1. At the
start of an hour, per the scheme of its case (the auction machinery is
`market.agents.auction_schemes`):

- RS1 (Case I): the coordinator runs `ScheduledAuctions`, one auction a block, one per lot of
  the hour's pooled supply;
- RS2 (Cases II, III): each seller runs an `OwnAuction` for its hour's energy;
- RS3 (Case IV): the coordinator runs an `OwnAuction` per seller's request, for that seller's
  energy, through the shared factory;

each auction accepting bids from the block after it is opened to about the hour's last block
(RS2/RS3: exactly the last; RS1's fixed duration: one block later per slot). Every agent with
a need in that hour reads the factory's new auctions, works out each one's lot (RS2: by its
owner; RS1/RS3: the k-th coordinator auction of the hour is the plan's k-th lot) and, while
its unmet need is at least half a lot, runs a `Bidder` on it whose limit is its valuation of
the lot, bid at once (Algorithm 1 sets the price). After the end, owners collect and bidders
withdraw (late in the next hour, so that bids go first: one account's transactions are mined
one after the other). The lot's energy (Wh) is off-chain bookkeeping, reported as a
`lot_opened` event by whoever opens the auction.

The agent is done once the last hour has ended and every auction it opened or bid on is
settled; SIGTERM stops it early. Each event is one line (`--json`: a JSON object)."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from market.agents.auction_schemes import BlockAgent, Bidder, OwnAuction, ScheduledAuctions
from market.agents.auctions import FACTORY, instance
from market.agents.client import AgentError, MarketClient, Reporter, json_reporter, text_reporter
from market.economics.vpp import (COORDINATOR, DIESEL, ESS, HourPlan, Lot, Scheme, household, lot_increment,
                                  plan_day, valuation_per_kwh, value_wei, wants)

BLOCK_SECONDS = 1
MIN_BLOCKS_PER_HOUR = 6
"""An hour's auctions open in its first blocks and accept bids until its last block."""
MAX_SETTLE_PER_BLOCK = 2
SETTLE_BLOCKS = 2
"""A bidder withdraws from ended auctions in the last SETTLE_BLOCKS blocks of an hour (and after
the last hour), at most MAX_SETTLE_PER_BLOCK a block: one account's transactions are mined one
after the other, and the hour's first blocks are for its bids."""


@dataclass(frozen=True)
class Clock:
    """Simulated hours on block numbers."""
    first_block: int
    blocks_per_hour: int
    hours: tuple[int, ...]

    def __init__(self, first_block: int, blocks_per_hour: int, hours) -> None:
        if blocks_per_hour < MIN_BLOCKS_PER_HOUR:
            raise ValueError(f"a simulated hour takes at least {MIN_BLOCKS_PER_HOUR} blocks")
        object.__setattr__(self, "first_block", first_block)
        object.__setattr__(self, "blocks_per_hour", blocks_per_hour)
        object.__setattr__(self, "hours", tuple(hours))

    def index_at(self, block: int) -> int | None:
        if block < self.first_block:
            return None
        index = (block - self.first_block) // self.blocks_per_hour
        return index if index < len(self.hours) else None

    def hour_at(self, block: int) -> int | None:
        index = self.index_at(block)
        return None if index is None else self.hours[index]

    def start_of(self, index: int) -> int:
        return self.first_block + index * self.blocks_per_hour

    @property
    def end_block(self) -> int:
        return self.first_block + len(self.hours) * self.blocks_per_hour - 1


def roles(households: int) -> list[tuple[str, int]]:
    """(role, dev account index): the coordinator is the admin #0, the ESS #1, the diesel #2 and
    the households #3… (prosumers, funded with elecoins)."""
    if not 1 <= households <= 17:
        raise ValueError("a VPP run has 1 to 17 households (dev accounts #3..#19)")
    return [(COORDINATOR, 0), (ESS, 1), (DIESEL, 2)] + [(household(i), 3 + i) for i in range(households)]


@dataclass
class _Candidate:
    address: str
    index: int
    """The simulated hour's position in the clock."""
    lot: Lot
    end_block: int
    bidder: Bidder | None = None
    tries: int = 0
    """Steps of its bidder while the auction is open (it bids its whole limit at once)."""
    leads: bool = False


class VppAgent(BlockAgent):
    """One VPP member (or the coordinator) on the block clock; see the module docstring."""

    kind = "vpp"

    def __init__(self, client: MarketClient, report: Reporter, role: str, households: int, clock: Clock,
                 addresses: dict[str, str]) -> None:
        super().__init__(client, report)
        if role not in addresses:
            raise ValueError(f"unknown role {role!r}: one of {', '.join(addresses)}")
        self.role = role
        self.clock = clock
        self.roles_of = {address: name for name, address in addresses.items()}
        self.coordinator = addresses[COORDINATOR]
        by_hour = {p.hour: p for p in plan_day(households)}
        self.plans: list[HourPlan] = [by_hour[h] for h in clock.hours]
        self._sink = report
        self.begun: set[int] = set()
        self.openers: list[ScheduledAuctions | OwnAuction] = []
        self.requests: list[tuple[int, Lot]] = []
        """RS2/RS3 lots still to open: (hour index, lot)."""
        self.candidates: dict[str, _Candidate] = {}
        self._factory_seen: int | None = None
        self._coordinator_lots: dict[int, int] = {}
        """Hour index -> coordinator auctions of that hour seen so far."""

    # -- reporting ---------------------------------------------------------------------------
    def report(self, event: str, **fields) -> None:
        super().report(event, role=self.role, **fields)

    def _sub_report(self, index: int, lots: list[Lot] | None = None):
        """A reporter for a sub-agent: tags its events with the role and hour and, for an opener,
        reports each opened auction's lot (the k-th auction it opens sells the k-th lot)."""
        slots = iter(lots or [])
        hour = self.clock.hours[index]

        def report(event: dict) -> None:
            self._sink({**event, "role": self.role, "hour": hour})
            if lots is not None and event["event"] == "opened":
                lot = next(slots, None)
                if lot is not None:
                    self._sink({"agent": self.kind, "event": "lot_opened", "role": self.role, "hour": hour,
                                "auction": event["auction"], "seller": lot.seller, "wh": lot.wh,
                                "account": self.client.address, "time": event["time"]})
        return report

    # -- the hour's opening --------------------------------------------------------------------
    def hour_end(self, index: int) -> int:
        return self.clock.start_of(index) + self.clock.blocks_per_hour - 1

    def _begin(self, index: int, block: int) -> None:
        self.begun.add(index)
        plan = self.plans[index]
        mine = [lot for lot in plan.lots if lot.opener == self.role]
        self.report("hour", hour=plan.hour, case=plan.case.name, scheme=plan.scheme.name, block=block,
                    sells=plan.supply(self.role), needs=plan.need(self.role), opens=len(mine))
        if not mine:
            return
        if plan.scheme is Scheme.RS1:
            # The operator's schedule: one auction a block, each lasting to about the hour's end.
            schedule = ScheduledAuctions(self.client, self._sub_report(index, mine), every_blocks=1,
                                         duration_blocks=max(self.hour_end(index) - block - 1, 2),
                                         increment=lot_increment(plan, mine[0]), start_delay=1, count=len(mine),
                                         adopt=False)
            self.openers.append(schedule)
        else:
            self.requests.extend((index, lot) for lot in mine)

    def _open_requested(self) -> None:
        """Open the pending RS2/RS3 lots, one auction each, all ending at their hour's last block."""
        for index, lot in list(self.requests):
            self.requests.remove((index, lot))
            block = self.client.w3.eth.block_number
            duration = self.hour_end(index) - block  # start = block + 1 .. the hour's last block
            if duration < 2:
                self.report("missed", hour=self.clock.hours[index], seller=lot.seller, wh=lot.wh, block=block)
                continue
            own = OwnAuction(self.client, self._sub_report(index, [lot]), lot_increment(self.plans[index], lot),
                             duration, start_delay=1)
            try:
                own.step_block(block)
            except AgentError as exc:
                self.report("missed", hour=self.clock.hours[index], seller=lot.seller, wh=lot.wh, reason=str(exc))
                continue
            self.openers.append(own)

    # -- finding the lots to bid on ------------------------------------------------------------
    def _discover(self) -> None:
        count = self.client.view(FACTORY, "auctionCount")
        if self._factory_seen is None:
            self._factory_seen = count if self.clock.first_block > self.client.w3.eth.block_number else 0
        for position in range(self._factory_seen, count):
            address = self.client.view(FACTORY, "auctionAt", position)
            name = instance(address)
            owner = self.client.view(name, "owner")
            index = self.clock.index_at(self.client.view(name, "startBlock"))
            if index is None:
                continue
            plan = self.plans[index]
            if owner == self.coordinator and plan.scheme is not Scheme.RS2:
                k = self._coordinator_lots.get(index, 0)
                self._coordinator_lots[index] = k + 1
                lot = plan.lots[k] if k < len(plan.lots) else None
            else:
                role = self.roles_of.get(owner)
                lot = next((x for x in plan.lots if x.opener == role), None)
            if lot is not None and plan.need(self.role):
                self.candidates[address] = _Candidate(address, index, lot, self.client.view(name, "endBlock"))
        self._factory_seen = count

    def unmet(self, index: int) -> int:
        covered = sum(c.lot.wh for c in self.candidates.values()
                      if c.index == index and c.bidder is not None
                      and (c.leads or c.bidder.finished.get(c.address) == "won"))
        return max(self.plans[index].need(self.role) - covered, 0)

    def _bid(self) -> None:
        """Bid on the open lots this agent wants. Its bidders bid their whole limit at once, so a
        lot needs a second look only to learn whether the agent still leads it."""
        block = self.client.w3.eth.block_number
        undecided = [c for c in self.candidates.values() if c.bidder is None and c.end_block > block]
        if not undecided:
            return
        for c in self.candidates.values():
            if c.bidder is not None and c.bidder.bids and c.end_block >= block:
                c.leads = self.client.view(instance(c.address), "highestBidder") == self.client.address
        for candidate in undecided:
            if not wants(self.unmet(candidate.index), candidate.lot, self.role):
                continue
            plan = self.plans[candidate.index]
            limit = value_wei(candidate.lot.wh, valuation_per_kwh(plan, self.role))
            candidate.bidder = Bidder(self.client, self._sub_report(candidate.index), max_total=limit,
                                      step=limit, auctions=lambda a=candidate.address: [a])
            self.report("bidding", auction=candidate.address, hour=plan.hour, seller=candidate.lot.seller,
                        wh=candidate.lot.wh, limit=limit)
            self._try(candidate, self.client.w3.eth.block_number)

    def _try(self, candidate: _Candidate, block: int) -> None:
        candidate.tries += 1
        candidate.bidder.step_block(block)
        candidate.leads = candidate.address in candidate.bidder.leading

    def settling(self, block: int) -> bool:
        """Whether bidders withdraw in this block: in an hour's last `SETTLE_BLOCKS` blocks, when
        its bids are in, and after the last hour."""
        index = self.clock.index_at(block)
        return index is None or block - self.clock.start_of(index) >= self.clock.blocks_per_hour - SETTLE_BLOCKS

    def _retry_and_settle(self, block: int) -> int:
        """A second try on open lots not yet bid on (the auction may not have started), then
        withdrawals from ended ones, a few a block late in the hour; returns how many lots are
        unsettled."""
        settled, left = 0, 0
        if not self.settling(block):
            settled = MAX_SETTLE_PER_BLOCK
        for candidate in self.candidates.values():
            bidder = candidate.bidder
            if bidder is None or candidate.address in bidder.finished:
                continue
            left += 1
            if candidate.end_block >= block:
                if not bidder.bids and candidate.tries < 3 and candidate.end_block > block:
                    self._try(candidate, block)
            elif settled < MAX_SETTLE_PER_BLOCK:
                bidder.step_block(block)
                settled += 1
        return left

    def step_block(self, block_number: int) -> None:
        index = self.clock.index_at(block_number)
        if index is not None and index not in self.begun:
            self._begin(index, block_number)
        self._open_requested()
        # Opening is due at a block, collecting can wait: schedules with auctions still to open
        # first, then one opener's collection per block.
        for opener in self.openers:
            if isinstance(opener, ScheduledAuctions) and not opener.all_opened():
                opener.step_block(self.client.w3.eth.block_number)
        collecting = [o for o in self.openers if not o.done and (
            not isinstance(o, ScheduledAuctions) or o.all_opened())]
        if collecting:
            collecting[0].step_block(self.client.w3.eth.block_number)
        self._discover()
        self._bid()
        left = self._retry_and_settle(block_number)
        if block_number > self.clock.end_block + 1 and left == 0 and not self.requests and all(
                o.done for o in self.openers):
            self.done = True

    def summary(self) -> dict:
        mine = [c for c in self.candidates.values() if c.bidder is not None]
        won = [c for c in mine if c.bidder.finished.get(c.address) == "won"]
        return {"opened": sum(len(o.opened) for o in self.openers),
                "income": sum(sum(o.collected.values()) for o in self.openers),
                "bids": sum(c.bidder.bids for c in mine), "won": len(won),
                "lost": sum(1 for c in mine if c.bidder.finished.get(c.address) == "lost"),
                "paidWei": sum(c.bidder.paid_wei for c in mine), "wonWh": sum(c.lot.wh for c in won)}


# -- the process ---------------------------------------------------------------------------------

def _key(text: str) -> str:
    path = Path(text)
    value = path.read_text().strip() if path.is_file() else text
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raise argparse.ArgumentTypeError("the key is 32 bytes of hex, or a file holding them") from None
    if len(raw) != 32:
        raise argparse.ArgumentTypeError("the key is 32 bytes of hex, or a file holding them")
    return value


def _hours(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated hours, got {text!r}") from None


def _read_roles(path: Path) -> dict[str, str]:
    from web3 import Web3

    try:
        document = json.loads(path.read_text())
        return {str(role): Web3.to_checksum_address(address) for role, address in document.items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise ValueError(f"--roles {path}: expected a JSON object of role -> address ({exc})") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m market.agents.vpp",
        description="One agent of paper 004's VPP (coordinator, ess, diesel, house0, house1, …) trading in "
                    "English auctions through a node's JSON-RPC, on a block clock of simulated hours. "
                    "`gridnode sim vpp --live` starts one per role.")
    parser.add_argument("role", help="coordinator, ess, diesel or houseN")
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="node RPC URL (default %(default)s)")
    parser.add_argument("--key", required=True, type=_key, help="the agent's private key: hex, or a file of hex")
    parser.add_argument("--households", type=int, default=4, help="households in the VPP (default 4)")
    parser.add_argument("--first-block", type=int, required=True, help="block at which the first hour starts")
    parser.add_argument("--blocks-per-hour", type=int, default=6, help="blocks per simulated hour (default 6)")
    parser.add_argument("--hours", type=_hours, default=list(range(24)),
                        help="simulated hours to play, comma-separated (default 0..23)")
    parser.add_argument("--roles", type=Path, metavar="FILE",
                        help='JSON {"role": "0xaddress", …} of every agent (default: the dev accounts: '
                             'coordinator #0, ess #1, diesel #2, houseN #3+N)')
    parser.add_argument("--poll", type=float, default=0.2, help="seconds between looks at the head (default 0.2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    return parser


def main(argv: list[str] | None = None) -> int:
    from genesis.devnet import dev_accounts

    args = build_parser().parse_args(argv)
    report = json_reporter() if args.json else text_reporter()
    try:
        clock = Clock(args.first_block, args.blocks_per_hour, args.hours)
        if args.roles is not None:
            addresses = _read_roles(args.roles)
        else:
            accounts = dev_accounts(20)
            addresses = {role: accounts[i].address.to_checksum() for role, i in roles(args.households)}
        client = MarketClient(args.rpc, args.key)
        agent = VppAgent(client, report, args.role, args.households, clock, addresses)
    except (ValueError, AgentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if addresses[args.role] != client.address:
        print(f"error: {args.role} trades from {addresses[args.role]}, not {client.address}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.run_blocks(stop, args.poll)
    return 0


if __name__ == "__main__":
    sys.exit(main())
