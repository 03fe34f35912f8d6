"""`gridnode sim households --live`: paper 001's equilibrium strategies executed through the
chain's contracts, and the peak cuts recomputed from what the chain recorded.

The paper's households "create smart contracts on the blockchain according to the optimal
strategy" every half hour (§2.2). Here each slot's equilibrium (`equilibrium_day`) becomes
transactions on a devnet, one wallet per household (devnet prosumers #1..#4, their meter
oracles #20..#23) and the operator (#0, the main grid's agent):

1. Metering. Each household's oracle posts the slot's reading (PV generated, energy
   consumed, in Wh) to Meters; a household with a surplus to sell has it minted as energy
   tokens by its oracle (`EnergyToken.mintWatts`, against the generation just reported).
2. Community (routes i and ii). Sellers `placeAsk(surplus, COMMUNITY_PRICE)`, buyers
   `placeBid(deficit, GRID_PRICE)` in one DoubleAuction interval. The operator places a
   standing ask at GRID_PRICE for the buyers' whole deficit. The clearing sorts asks by price,
   so the households' own energy is matched first and the operator fills only what the
   community cannot: "a buyer's shortfall comes from the main grid". The operator places no
   bid here, so a community seller's unsold surplus comes back unsold, as `settle` curtails
   it (choosing to sell in the community is choosing not to sell to the main grid).
3. Main grid (routes iv and v), in intervals of their own: buyers `placeBid(deficit,
   GRID_PRICE)` against the operator's ask of the same volume; sellers `placeAsk(surplus,
   FEED_IN_PRICE)` against the operator's bid of the same volume. One call market crosses
   every bid with every cheaper ask, so each route needs its own interval: in the
   community's, a main-grid buyer would take a community seller's energy.
   Idle households (route iii) post their reading and trade nothing.

The operator mints the grid energy it offers (it is an EnergyToken issuer; energy offered and
not taken stays in its stock for the next slot) and pays for what it buys in fiat. Afterwards every household's trade is rebuilt from the chain alone: its
consumption from `ReadingPosted`, its community and main-grid energy from `Fill` events
(whose bid and ask ids name their owners through `OrderPlaced`), and the peak cuts are
computed from those numbers and printed beside the simulation's.

Energy is metered in whole Wh, so the chain's figures differ from the simulation's floats by
at most half a Wh per household and slot; which community buyer the operator tops up follows
the auction's time priority rather than `settle`'s pro-rata split, which moves no total.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from market.economics import household_data as data
from market.economics.households import Community, Route, Strategy, equilibrium_day, habit_day, paper_community

OPERATOR = -1
"""The owner index of the operator's orders (households are 0..n-1)."""
COMMUNITY_PRICE = 20
"""What a community seller asks, fiat base units (cents) per kWh: below the grid's tariff."""
GRID_PRICE = 30
"""The operator's tariff for main-grid energy (market.agents.operator's default, 0.30 GUSD/kWh)."""
FEED_IN_PRICE = 8
"""What the operator pays for energy sold to the main grid, cents per kWh."""
DEFAULT_INTERVAL_BLOCKS = 3
"""DoubleAuction interval on the live devnet: orders sent in an interval's last block land in
the next one with two blocks to spare, and one book takes about 3 s at 1 block/s."""
WH_PER_KWH = 1000


@dataclass(frozen=True)
class Order:
    owner: int
    """A household's index, or OPERATOR."""
    is_bid: bool
    wh: int
    price: int


@dataclass(frozen=True)
class SlotPlan:
    """One slot's equilibrium strategies as readings and orders, in integer Wh."""

    index: int
    start_hour: float
    routes: tuple[Route, ...]
    pv_wh: tuple[int, ...]
    consumption_wh: tuple[int, ...]
    books: tuple[tuple[str, tuple[Order, ...]], ...]
    """(name, orders) per DoubleAuction interval: "community", "grid-buy", "grid-sell"."""

    @property
    def net_wh(self) -> tuple[int, ...]:
        return tuple(p - c for p, c in zip(self.pv_wh, self.consumption_wh))

    def expected(self) -> dict:
        """What the contract's rules make of these orders: the community volume between
        households, and each household's main-grid energy (+ sold, − bought) in total."""
        net, routes = self.net_wh, self.routes
        supply = sum(n for n, r in zip(net, routes) if r == Route.SELL_COMMUNITY and n > 0)
        demand = -sum(n for n, r in zip(net, routes) if r == Route.BUY_COMMUNITY and n < 0)
        traded = min(supply, demand)
        main = [n if r in (Route.BUY_MAIN, Route.SELL_MAIN) else 0 for n, r in zip(net, routes)]
        return {"community_wh": traded, "community_shortfall_wh": demand - traded,
                "main_wh": main, "bought_wh": [-n if r in (Route.BUY_COMMUNITY, Route.BUY_MAIN) and n < 0 else 0
                                                for n, r in zip(net, routes)]}


def _wh(kwh: float) -> int:
    return int(round(kwh * WH_PER_KWH))


def plan_slot(community: Community, t: int, profile: Sequence[Strategy]) -> SlotPlan:
    """Slot t's readings and orders for the households' strategies `profile`."""
    slot = community.slot(t)
    cooling = np.array([move.cooling_kw for move in profile])
    pv = tuple(_wh(e) for e in slot.pv_kwh)
    used = tuple(_wh(b + c * data.SLOT_HOURS) for b, c in zip(slot.base_kwh, cooling))
    routes = tuple(move.route for move in profile)
    net = [p - c for p, c in zip(pv, used)]
    community_orders, buys, sells = [], [], []
    for i, (route, n) in enumerate(zip(routes, net)):
        if route == Route.SELL_COMMUNITY and n > 0:
            community_orders.append(Order(i, False, n, COMMUNITY_PRICE))
        elif route == Route.BUY_COMMUNITY and n < 0:
            community_orders.append(Order(i, True, -n, GRID_PRICE))
        elif route == Route.BUY_MAIN and n < 0:
            buys.append(Order(i, True, -n, GRID_PRICE))
        elif route == Route.SELL_MAIN and n > 0:
            sells.append(Order(i, False, n, FEED_IN_PRICE))
    demand = sum(o.wh for o in community_orders if o.is_bid)
    if demand:
        community_orders.append(Order(OPERATOR, False, demand, GRID_PRICE))
    if buys:
        buys.append(Order(OPERATOR, False, sum(o.wh for o in buys), GRID_PRICE))
    if sells:
        sells.append(Order(OPERATOR, True, sum(o.wh for o in sells), FEED_IN_PRICE))
    books = tuple((name, tuple(orders)) for name, orders in
                  (("community", community_orders), ("grid-buy", buys), ("grid-sell", sells)) if orders)
    return SlotPlan(index=t, start_hour=data.SLOT_STARTS[t], routes=routes, pv_wh=pv, consumption_wh=used,
                    books=books)


@dataclass
class SlotRecord:
    """One slot as the chain recorded it, rebuilt from its events."""

    index: int
    consumption_wh: list[int]
    """From ReadingPosted."""
    generation_wh: list[int]
    community_wh: list[int]
    """Energy sold to (+) or bought from (−) other households, from Fill events."""
    main_wh: list[int]
    """Energy sold to (+) or bought from (−) the operator, from Fill events."""
    unsold_wh: list[int]
    """Asked and not matched: a community seller's curtailed surplus."""
    intervals: list[int] = field(default_factory=list)
    blocks: tuple[int, int] = (0, 0)


# -- the devnet ------------------------------------------------------------------------------
def devnet_document(signer_address, interval_blocks: int = DEFAULT_INTERVAL_BLOCKS) -> dict:
    """The devnet genesis with a `interval_blocks` DoubleAuction and 1-second meter slots
    (so a reading can be posted for every simulated half hour, seconds apart)."""
    from genesis.devnet import devnet_genesis_document

    document = devnet_genesis_document(signer_address)
    document["contracts"]["DoubleAuction"]["params"] = {"intervalBlocks": interval_blocks}
    document["contracts"]["Meters"].setdefault("params", {})["slotSeconds"] = 1
    return document


@contextmanager
def devnet(directory: Path, interval_blocks: int = DEFAULT_INTERVAL_BLOCKS, timeout: float = 60.0) -> Iterator[str]:
    """`gridnode init` + `gridnode start` on a free port in `directory`; yields the RPC URL and
    stops the node (SIGTERM, then SIGKILL) on the way out."""
    from consensus.engine import Signer
    from node.datadir import write_secret

    datadir = Path(directory) / "node"
    datadir.mkdir(parents=True)
    key = secrets.token_bytes(32)
    write_secret(datadir / "signer.key", key.hex() + "\n")
    genesis = Path(directory) / "genesis.json"
    genesis.write_text(json.dumps(devnet_document(Signer(key).address, interval_blocks)))
    init = subprocess.run([sys.executable, "-m", "cli.main", "init", "--genesis", str(genesis), "--datadir",
                           str(datadir)], capture_output=True, text=True)
    if init.returncode != 0:
        raise RuntimeError(f"gridnode init failed:\n{init.stdout}{init.stderr}")
    log_path = Path(directory) / "node.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "cli.main", "start", "--datadir", str(datadir),
                                    "--rpc-port", "0", "--listen", "/ip4/127.0.0.1/tcp/0"],
                                   stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(r"Started JSON-RPC server at (http://[\d.]+:\d+)/", log_path.read_text())
            if match:
                break
            if process.poll() is not None:
                raise RuntimeError("the devnet node exited during start:\n" + log_path.read_text()[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError("the devnet node did not start in time:\n" + log_path.read_text()[-3000:])
            time.sleep(0.05)
        yield match.group(1)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- executing the strategies ------------------------------------------------------------------
class LiveCommunity:
    """The households' and the operator's wallets on a node, executing slot plans."""

    def __init__(self, rpc_url: str, households: int, poll: float = 0.1) -> None:
        from genesis.devnet import dev_accounts
        from market.agents.client import MarketClient

        accounts = dev_accounts(20 + households)
        self.operator = MarketClient(rpc_url, accounts[0].private_key)
        self.homes = [MarketClient(rpc_url, accounts[1 + i].private_key) for i in range(households)]
        self.oracles = [MarketClient(rpc_url, accounts[20 + i].private_key) for i in range(households)]
        self.w3 = self.operator.w3
        self.poll = poll
        self.pool = ThreadPoolExecutor(max_workers=2 * households + 2)
        self.interval_blocks = self.operator.view("DoubleAuction", "intervalBlocks")
        self.last_meter_slot = -1
        for home, oracle in zip(self.homes, self.oracles):
            if self.operator.view("Meters", "oracleOf", home.address) != oracle.address:
                raise RuntimeError(f"{oracle.address} is not the meter oracle of {home.address} on this chain")

    def close(self) -> None:
        self.pool.shutdown()

    def _parallel(self, calls: list[Callable[[], object]]) -> list:
        return [future.result() for future in [self.pool.submit(call) for call in calls]]

    def client(self, owner: int):
        return self.operator if owner == OPERATOR else self.homes[owner]

    def setup(self) -> None:
        """The operator becomes an EnergyToken issuer; every wallet approves the DoubleAuction."""
        auction = self.operator.contract("DoubleAuction").address
        if not self.operator.view("EnergyToken", "isIssuer", self.operator.address):
            self.operator.send("EnergyToken", "addIssuer", self.operator.address)
        # One thread per wallet: a wallet's transactions go one after another (its nonces).
        self._parallel([lambda wallet=wallet: [wallet.send(token, "approve", auction, 2**255)
                                               for token in ("FiatToken", "EnergyToken")]
                        for wallet in (self.operator, *self.homes)])

    def _wait_block(self, condition: Callable[[int], bool], what: str = "the next auction interval",
                    timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            number = self.w3.eth.block_number
            if condition(number):
                return number
            if time.monotonic() > deadline:
                raise RuntimeError(f"no block for {what} after {timeout:.0f} s (head {number}): is the node producing?")
            time.sleep(self.poll)

    def execute(self, plan: SlotPlan) -> SlotRecord:
        """Post the slot's readings, mint the sellers' surplus, run its books; read it all back."""
        first = self.w3.eth.block_number + 1
        # One reading per prosumer and meter slot: wait for a slot this run has not used.
        self._wait_block(lambda _: self.operator.view("Meters", "currentSlot") > self.last_meter_slot,
                         "a fresh meter slot (Meters.slotSeconds should be 1)")
        meter_slot = self.operator.view("Meters", "currentSlot")
        self.last_meter_slot = meter_slot
        self._parallel([lambda i=i: self.oracles[i].send("Meters", "postReading", self.homes[i].address, meter_slot,
                                                         plan.pv_wh[i], plan.consumption_wh[i], 0)
                        for i in range(len(self.homes))])
        asks = [o for _, orders in plan.books for o in orders if not o.is_bid]
        mints = [lambda o=o: self.oracles[o.owner].send("EnergyToken", "mintWatts", self.homes[o.owner].address, o.wh)
                 for o in asks if o.owner != OPERATOR]  # one ask per household and slot: one mint per oracle
        # The operator's ask is grid energy it imports: it mints what its stock (grid energy
        # offered before and not taken) does not cover, as market.agents.operator does.
        grid_wh = max(sum(o.wh for o in asks if o.owner == OPERATOR)
                      - self.operator.view("EnergyToken", "balanceOf", self.operator.address), 0)
        if grid_wh:
            mints.append(lambda: self.operator.send("EnergyToken", "mint", self.operator.address, grid_wh))
        self._parallel(mints)
        intervals = []
        for name, orders in plan.books:
            intervals.append(self._run_book(name, orders))
        last = self.w3.eth.block_number
        record = self.read(plan.index, len(self.homes), first, last)
        record.intervals = intervals
        return record

    def _run_book(self, name: str, orders: tuple[Order, ...]) -> int:
        blocks = self.interval_blocks
        # Send in an interval's last block, so every order lands in the next interval.
        self._wait_block(lambda n: n % blocks == blocks - 1 or blocks == 1)
        receipts = self._parallel([lambda o=o: self.client(o.owner).send(
            "DoubleAuction", "placeBid" if o.is_bid else "placeAsk", o.wh, o.price) for o in orders])
        placed = [self.operator.event(r, "DoubleAuction", "OrderPlaced") for r in receipts]
        intervals = {p["interval"] for p in placed}
        if len(intervals) != 1:
            raise RuntimeError(f"the {name} book's orders landed in intervals {sorted(intervals)}; "
                               f"use more --interval-blocks")
        (interval,) = intervals
        self._wait_block(lambda n: n >= (interval + 1) * blocks - 1, f"the clearing of interval {interval}")
        return interval

    def read(self, index: int, households: int, first: int, last: int) -> SlotRecord:
        """Rebuild a slot from the events of blocks first..last: readings, orders, fills."""
        meters, auction = self.operator.contract("Meters"), self.operator.contract("DoubleAuction")
        owner_of = {self.operator.address: OPERATOR, **{h.address: i for i, h in enumerate(self.homes)}}
        record = SlotRecord(index=index, consumption_wh=[0] * households, generation_wh=[0] * households,
                            community_wh=[0] * households, main_wh=[0] * households, unsold_wh=[0] * households,
                            blocks=(first, last))
        for event in meters.events.ReadingPosted().get_logs(from_block=first, to_block=last):
            i = owner_of.get(event.args.prosumer)
            if i is not None and i != OPERATOR:
                record.consumption_wh[i] += event.args.consumptionWh
                record.generation_wh[i] += event.args.generationWh
        orders = {e.args.id: (owner_of.get(e.args.owner), e.args.isBid, e.args.wh)
                  for e in auction.events.OrderPlaced().get_logs(from_block=first, to_block=last)}
        filled: dict[int, int] = {}
        for fill in auction.events.Fill().get_logs(from_block=first, to_block=last):
            buyer, seller, wh = orders[fill.args.bidId][0], orders[fill.args.askId][0], fill.args.wh
            filled[fill.args.bidId] = filled.get(fill.args.bidId, 0) + wh
            filled[fill.args.askId] = filled.get(fill.args.askId, 0) + wh
            if seller == OPERATOR and buyer != OPERATOR:
                record.main_wh[buyer] -= wh
            elif buyer == OPERATOR and seller != OPERATOR:
                record.main_wh[seller] += wh
            elif OPERATOR not in (buyer, seller):
                record.community_wh[buyer] -= wh
                record.community_wh[seller] += wh
        for order_id, (owner, is_bid, wh) in orders.items():
            if owner not in (None, OPERATOR) and not is_bid:
                record.unsold_wh[owner] += wh - filled.get(order_id, 0)
        return record


def check(plan: SlotPlan, record: SlotRecord) -> list[str]:
    """Where the chain's record of a slot differs from what was sent (empty: it agrees)."""
    problems, expected = [], plan.expected()
    if record.consumption_wh != list(plan.consumption_wh) or record.generation_wh != list(plan.pv_wh):
        problems.append(f"slot {plan.index}: readings {record.generation_wh}/{record.consumption_wh} "
                        f"!= sent {list(plan.pv_wh)}/{list(plan.consumption_wh)}")
    sold = sum(w for w in record.community_wh if w > 0)
    if sold != expected["community_wh"] or sum(record.community_wh) != 0:
        problems.append(f"slot {plan.index}: community trade {record.community_wh} != {expected['community_wh']} Wh")
    for i, route in enumerate(plan.routes):
        got = record.community_wh[i] + record.main_wh[i]
        if route in (Route.BUY_MAIN, Route.SELL_MAIN) and record.main_wh[i] != expected["main_wh"][i]:
            problems.append(f"slot {plan.index}: household {i + 1} main grid {record.main_wh[i]} "
                            f"!= {expected['main_wh'][i]} Wh")
        if expected["bought_wh"][i] and -got != expected["bought_wh"][i]:
            problems.append(f"slot {plan.index}: household {i + 1} bought {-got} != {expected['bought_wh'][i]} Wh")
        if route == Route.SELL_COMMUNITY and plan.net_wh[i] > 0 and \
                record.community_wh[i] + record.unsold_wh[i] != plan.net_wh[i]:
            problems.append(f"slot {plan.index}: household {i + 1} sold + unsold != its surplus")
    shortfall = -sum(w for i, w in enumerate(record.main_wh) if plan.routes[i] == Route.BUY_COMMUNITY)
    if shortfall != expected["community_shortfall_wh"]:
        problems.append(f"slot {plan.index}: operator topped up {shortfall} != {expected['community_shortfall_wh']} Wh")
    return problems


# -- the experiment ----------------------------------------------------------------------------
def _figures(consumption_kw: np.ndarray, main_kw: np.ndarray, import_kw: np.ndarray) -> dict:
    return {"household1_peak_kw": round(float(consumption_kw[0].max()), 3),
            "grid_peak_kw": round(float(main_kw.max()), 3),
            "import_peak_kw": round(float(import_kw.max()), 3)}


def run_live(slots: range | None = None, interval_blocks: int = DEFAULT_INTERVAL_BLOCKS, rpc_url: str | None = None,
             progress: bool = False, community: Community | None = None, max_rounds: int = 100) -> dict:
    """Execute the equilibrium day's `slots` (default all 24) on a fresh devnet (or on the node
    at `rpc_url`), then compare the simulation's figures over those slots with the chain's."""
    from tqdm import tqdm

    community = community or paper_community()
    slots = slots if slots is not None else range(len(data.SLOT_STARTS))
    before, after = habit_day(community), equilibrium_day(community, max_rounds=max_rounds)
    plans = [plan_slot(community, t, after.strategies[t]) for t in slots]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gridnode-households-") as directory:
        with (devnet(Path(directory), interval_blocks) if rpc_url is None else _given(rpc_url)) as url:
            live = LiveCommunity(url, len(community.houses))
            try:
                live.setup()
                records = []
                for plan in tqdm(plans, disable=not progress, file=sys.stderr, desc="slots on chain"):
                    records.append(live.execute(plan))
            finally:
                live.close()
    elapsed = time.monotonic() - started
    problems = [p for plan, record in zip(plans, records) for p in check(plan, record)]
    index = list(slots)
    hours = data.SLOT_HOURS
    chain_consumption = np.array([r.consumption_wh for r in records], float).T / WH_PER_KWH / hours
    chain_main = np.array([sum(abs(w) for w in r.main_wh) for r in records], float) / WH_PER_KWH / hours
    chain_import = np.array([-sum(r.main_wh) for r in records], float) / WH_PER_KWH / hours
    sim_before = _figures(before.consumption_kw[:, index], before.main_traffic_kw[index], before.grid_import_kw[index])
    sim_after = _figures(after.consumption_kw[:, index], after.main_traffic_kw[index], after.grid_import_kw[index])
    chain_after = _figures(chain_consumption, chain_main, chain_import)

    def cuts(figures: dict) -> dict:
        return {key.replace("_kw", "_cut"): round(1.0 - figures[key] / sim_before[key], 4) if sim_before[key] > 0
                else None for key in figures}

    return {
        "slots": [data.SLOT_STARTS[t] for t in index],
        "interval_blocks": live.interval_blocks,
        "seconds": round(elapsed, 1),
        "blocks": [records[0].blocks[0], records[-1].blocks[1]] if records else [],
        "before": sim_before,
        "simulation": {**sim_after, **cuts(sim_after)},
        "chain": {**chain_after, **cuts(chain_after)},
        "main_grid_kw": {"simulation": after.main_traffic_kw[index].round(3).tolist(),
                         "chain": chain_main.round(3).tolist()},
        "household1_kw": {"simulation": after.consumption_kw[0, index].round(3).tolist(),
                          "chain": chain_consumption[0].round(3).tolist()},
        "community_kwh": {"simulation": [round(float(np.clip(_settled_community(community, t, after), 0, None).sum()),
                                               3) for t in index],
                          "chain": [sum(w for w in r.community_wh if w > 0) / WH_PER_KWH for r in records]},
        "records": [{"slot": data.SLOT_STARTS[r.index], "consumption_wh": r.consumption_wh,
                     "community_wh": r.community_wh, "main_wh": r.main_wh, "unsold_wh": r.unsold_wh,
                     "intervals": r.intervals} for r in records],
        "orders": sum(len(orders) for plan in plans for _, orders in plan.books),
        "problems": problems,
        "agrees": not problems,
    }


def _settled_community(community: Community, t: int, day) -> np.ndarray:
    from market.economics.households import settle

    slot = community.slot(t)
    profile = day.strategies[t]
    return settle([m.route for m in profile], slot.net_kwh(np.array([m.cooling_kw for m in profile]))).community


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url
