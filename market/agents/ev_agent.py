"""One EV of a live PoSOC network as its own process: it trades on the V2VMarket with the
federated actor-critic policy, its charger reports each hour, and it takes part in federated
learning through the chain (`python -m market.agents.ev_agent --rpc URL --ev N …`).

Everything goes over JSON-RPC (`meter_driver.Rpc`): transactions are signed here with locally
counted nonces and sent without waiting; receipts are read a block later. Per chain hour while
the EV is parked (arrival, departure and arrival SOC drawn per day as `v2v.sample_days` draws
them, prices the chain's tariff):

* observe → the policy's action (kWh, + buys, − sells, eq. 4.12) → the MDP's step (SOC limits,
  reward 4.14) → a V2V order for that energy at the hour's V2V price, the midpoint of retail and
  buy-back (the thesis's p^v2v). What the book does not match the EV trades with the grid at the
  tariff, off chain (its accounts say so); the battery does the whole action either way.
  An order is placed for the hour of the *next* block, so with one-second hours it still lands
  in the hour it was meant for.
* once the hour has ended the charger key posts `EVChargers.postReport` (energy charged and
  discharged, SOC at the end of the hour, the departure flag).

At departure: a local PPO update on the day (`federated.local_update`), the update stored on the
node (`grid_putModel`) and its commitment posted (`posoc.engine.commitment`) while the window is
still open. At the next window: the agent drawn as its mLAG fetches the committed updates,
averages them with `consensus.rules.fedavg` (the rule every node checks bit for bit) and posts
the aggregate; every agent loads the global model once it is on chain (or keeps its own if none
comes by its arrival) and pays its mining fee, except a `--selfish` agent, which skips the first
fee it owes, is confiscated and barred, and then settles.

Every agent stops by itself: after its last window's duties, or at `--deadline` (Unix seconds),
whichever comes first; Ctrl-C and SIGTERM stop it at once. It writes what it did as JSON lines to
`--out` and readable lines to stderr."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import eth_abi
import numpy as np
import rlp
from eth_account import Account

from consensus.posoc.engine import COMMIT, MAX_CHALLENGE_BYTES, POSOC_ADDRESS, aggregate, commitment
from consensus.rules import fedavg
from genesis.devnet import DEVNET_ACCOUNTS, TEST_MNEMONIC
from market.agents.meter_driver import MAX_FEE, TIP, Rpc, RpcError
from market.contracts.addresses import ENERGY_TOKEN, EV_CHARGERS, FIAT_TOKEN
from market.economics import actor_critic as ac
from market.economics.federated import Trajectory, from_model, local_update, to_model
from market.economics.v2v import ACTIONS, BAND_OF_HOUR, OBSERVATION_SIZE, Days, observe, sample_days, step
from vm.native.contract import encode_call

V2V_MARKET = "0x6772696400000000000000000000000000000019"
HOURS = 24
MAX_UINT = 2**256 - 1
GAS = {"approve": 120_000, "order": 600_000, "report": 250_000, "message": 200_000, "fee": 400_000}
"""Gas limits; a transaction pays only what it uses."""
FEE_NONE, FEE_OPEN, FEE_OWED, FEE_PAID, FEE_CONFISCATED, FEE_SETTLED = range(6)
FEE_STATUS = ("none", "open", "owed", "paid", "confiscated", "settled")
POLL_SECONDS = 0.1


class AgentError(RuntimeError):
    """What stops an agent with a readable message (an unreachable node, a chain that is not PoSOC)."""


# -- the EV's keys and days ------------------------------------------------------------------------
def ev_keys(number: int) -> tuple[bytes, bytes]:
    """(EV key, charger key) of devnet account #`number`: its charger is #(20 + number − 1)."""
    if not 1 <= number < DEVNET_ACCOUNTS:
        raise AgentError(f"an EV is one of devnet accounts #1..#{DEVNET_ACCOUNTS - 1}, not #{number}")
    Account.enable_unaudited_hdwallet_features()  # two derivations, not the devnet's forty: agents start fast
    return tuple(bytes(Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}").key)
                 for i in (number, DEVNET_ACCOUNTS + number - 1))


def day_rng(seed: int, number: int) -> np.random.Generator:
    """The stream an EV draws its days from (the run's baseline redraws the same days)."""
    return np.random.default_rng([seed, number, 0])


def draw_day(rng: np.random.Generator, tariff_tenths: tuple[int, int, int]) -> Days:
    """One stay as `sample_days` draws it, at the chain's tariff (tenths of a cent → ¢/kWh)."""
    drawn = sample_days(1, rng)
    return Days(drawn.arrival, drawn.departure, drawn.soc, np.array([[p / 10 for p in tariff_tenths]]))


def v2v_price(retail: int, buyback: int) -> int:
    """p^v2v, the midpoint of the hour's band, tenths of a cent per kWh (within the band)."""
    return (retail + buyback) // 2


def order_for(energy_kwh: float, energy_tokens_wh: int) -> tuple[bool, int]:
    """(is a bid, Wh) of the V2V order for an action: a sale offers at most the EV's energy tokens."""
    wh = int(round(abs(energy_kwh) * 1000))
    return (True, wh) if energy_kwh > 0 else (False, min(wh, energy_tokens_wh))


@dataclass
class Hour:
    """One hour of the EV's day as the learner sees it."""

    obs: np.ndarray
    action: int
    logp: float
    value: float
    reward: float = 0.0
    active: bool = False
    energy: float = 0.0
    profit: float = 0.0
    score: float = 0.0


def trajectory(hours: list[Hour]) -> Trajectory:
    """The day as `federated.local_update` takes it: arrays shaped (24 hours, 1 stay)."""
    def column(name: str, dtype=float) -> np.ndarray:
        return np.array([[getattr(h, name)] for h in hours], dtype=dtype)

    return Trajectory(obs=np.stack([h.obs for h in hours])[:, None, :], actions=column("action", int),
                      logp=column("logp"), rewards=column("reward"), values=column("value"),
                      active=column("active", bool), energy=column("energy"), profit=column("profit"),
                      score=column("score"))


# -- federated learning through the chain -------------------------------------------------------------
def committed_updates(blocks: list[dict], round_: int, window_seconds: int, evs: list[str]) -> dict[int, tuple[bytes, int]]:
    """EV index → (hash, size) of the commitments the engine accepted for `round_`, read from the
    window's blocks (full transactions) by the engine's rules: from an EV, in a block of window
    `round_`, for that round, its first one, 1..MAX_MODEL_BYTES bytes."""
    from consensus.posoc.engine import MAX_MODEL_BYTES

    index = {address.lower(): k for k, address in enumerate(evs)}
    found: dict[int, tuple[bytes, int]] = {}
    for block in sorted(blocks, key=lambda b: int(b["number"], 16)):
        if int(block["timestamp"], 16) // window_seconds != round_:
            continue
        for tx in block["transactions"]:
            data = bytes.fromhex(tx["input"][2:])
            sender = index.get(tx["from"].lower())
            if (tx.get("to") or "").lower() != POSOC_ADDRESS.to_checksum().lower() or data[:1] != COMMIT \
                    or sender is None or sender in found:
                continue
            try:
                items = rlp.decode(data[1:])
                committed_round, model_hash, size = (int.from_bytes(items[0], "big"), items[1],
                                                     int.from_bytes(items[2], "big"))
            except (rlp.exceptions.DecodingError, IndexError, TypeError):
                continue
            if committed_round == round_ and len(model_hash) == 32 and 0 < size <= MAX_MODEL_BYTES:
                found[sender] = (model_hash, size)
    return found


def fee_decision(status: int, selfish_left: bool) -> str | None:
    """What an agent does about a window's fee: "pay" it, "skip" it (a selfish agent, once), "settle"
    after a confiscation, or nothing (none owed, still open, paid, settled)."""
    if status == FEE_OWED:
        return "skip" if selfish_left else "pay"
    if status == FEE_CONFISCATED:
        return "settle"
    return None


# -- the chain as this agent sees it -----------------------------------------------------------------
class Chain:
    """JSON-RPC to the first node that answers, with ABI encoding for the calls the agent makes."""

    def __init__(self, urls: list[str], timeout: float = 5.0) -> None:
        self.rpcs = [Rpc(url, timeout) for url in urls]

    def __call__(self, method: str, *params):
        error: RpcError | None = None
        for rpc in self.rpcs:
            try:
                return rpc(method, *params)
            except RpcError as exc:
                if "connection" not in str(exc).lower() and "timed out" not in str(exc).lower():
                    raise
                error = exc
        raise AgentError(f"no node answers: {error}")

    def batch(self, calls: list[tuple[str, list]]) -> list[dict]:
        return self.rpcs[0].batch(calls)

    def view(self, to: str, signature: str, args: tuple, out: tuple[str, ...], sender: str | None = None):
        call = {"to": to, "data": "0x" + encode_call(signature, args).hex()}
        if sender:
            call["from"] = sender
        values = eth_abi.decode(out, bytes.fromhex(self("eth_call", call, "latest")[2:]))
        return values[0] if len(out) == 1 else values

    def head(self) -> dict:
        return self("eth_getBlockByNumber", "latest", False)


class Wallet:
    """One key's transactions: local nonces, fire and forget, receipts checked later."""

    def __init__(self, chain: Chain, key: bytes, chain_id: int) -> None:
        self.chain = chain
        self.account = Account.from_key(key)
        self.address = self.account.address
        self.chain_id = chain_id
        self.nonce = int(chain("eth_getTransactionCount", self.address, "pending"), 16)

    def send(self, to: str, data: bytes, gas: int) -> str:
        for attempt in range(2):
            tx = {"to": to, "value": 0, "gas": gas, "chainId": self.chain_id, "maxFeePerGas": MAX_FEE,
                  "maxPriorityFeePerGas": TIP, "nonce": self.nonce, "data": data}
            raw = "0x" + bytes(self.account.sign_transaction(tx).raw_transaction).hex()
            try:
                tx_hash = self.chain("eth_sendRawTransaction", raw)
                self.nonce += 1
                return tx_hash
            except RpcError as error:
                if "nonce" not in str(error).lower() or attempt:
                    raise
                self.nonce = int(self.chain("eth_getTransactionCount", self.address, "pending"), 16)
        raise AssertionError("unreachable")


@dataclass
class Settings:
    rpc: list[str] | Path
    """Node RPC URLs, or a localnet.json to read them from once the nodes run (this agent's node first)."""
    ev: int
    """Devnet account number of the EV."""
    first_window: int | None
    """None: read it from `go` once the run says go."""
    days: int
    seed: int = 0
    selfish: bool = False
    selfish_lock: Path | None = None
    """Be the selfish one only if first to create this file when it owes a fee (one selfish EV per run,
    whichever owes first)."""
    go: Path | None = None
    """A JSON file {"first_window": W} the run writes once every agent is ready."""
    model: Path | None = None
    """A pretrained starting model (fixed-point bytes, `fedavg.Model.encode`); else a fresh one from `seed`."""
    out: Path | None = None
    deadline: float = float("inf")
    block_time: int = 1
    node: int = 0
    """With a localnet.json: the node this agent talks to first."""


def node_urls(settings: Settings) -> list[str]:
    """The RPC URLs, waiting (until the deadline) for a localnet.json and its nodes to answer."""
    if isinstance(settings.rpc, list):
        return settings.rpc
    while time.time() < settings.deadline:
        if settings.rpc.exists():
            try:
                urls = [node["rpc"] for node in json.loads(settings.rpc.read_text())["nodes"]]
            except (ValueError, KeyError):
                urls = []
            if urls:
                urls = urls[settings.node % len(urls):] + urls[:settings.node % len(urls)]
                try:
                    Rpc(urls[0], timeout=2)("eth_blockNumber")
                    return urls
                except RpcError:
                    pass
        time.sleep(0.3)
    raise AgentError(f"no node of {settings.rpc} answered before the deadline")


@dataclass
class Day:
    window: int
    days: Days
    soc: float
    hours: list[Hour | None] = field(default_factory=lambda: [None] * HOURS)
    orders: list[dict] = field(default_factory=list)
    reported: set[int] = field(default_factory=set)
    committed: bool = False


class EVAgent:
    """The loop of one EV: poll the head, act once per hour, do the window's duties."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.chain = Chain(node_urls(settings))
        self.out = open(settings.out, "a") if settings.out else None
        try:
            view = self.chain("grid_posoc")
        except RpcError as error:
            raise AgentError(f"the node is not a PoSOC chain: {error}") from None
        ev_key, charger_key = ev_keys(settings.ev)
        chain_id = int(self.chain("eth_chainId"), 16)
        self.wallet = Wallet(self.chain, ev_key, chain_id)
        self.charger = Wallet(self.chain, charger_key, chain_id)
        self.evs = [e["address"] for e in view["evs"]]
        if self.wallet.address not in self.evs:
            raise AgentError(f"devnet account #{settings.ev} ({self.wallet.address}) is not an EV of this chain")
        self.index = self.evs.index(self.wallet.address)
        self.hour_seconds, self.window_hours = view["hourSeconds"], view["windowHours"]
        if self.window_hours != HOURS:
            raise AgentError(f"the policy trades 24-hour days; this chain's window is {self.window_hours} hours")
        self.window_seconds = self.hour_seconds * self.window_hours
        self.tariff = (view["tariff"]["off"], view["tariff"]["mid"], view["tariff"]["on"])
        self.bands = {b: self.chain.view(V2V_MARKET, "hourPrices(uint64)", (h,), ("uint256", "uint256"))
                      for b, h in ((0, 0), (1, 12), (2, 8))}
        self.hyper = ac.Hyper()
        self.params = self._start_model()
        self.optimiser = ac.Adam(self.hyper.learning_rate)
        self.days_rng = day_rng(settings.seed, settings.ev)
        self.policy_rng = np.random.default_rng([settings.seed, settings.ev, 1])
        self.day: Day | None = None
        self.acted_hour = -1
        self.pending: dict[str, dict] = {}
        self.fees_due: dict[int, int] = {}
        """Window → the fee status last seen, for windows whose fee is not done with."""
        self.selfish_left = settings.selfish
        self.skipped: int | None = None
        self.probed_hour: int | None = None
        self.lock_tried = False
        self.tracked: set[int] = set()
        """Windows whose fee the agent follows (each once)."""
        self.aggregated: set[int] = set()
        self.loaded: set[int] = set()
        self.window_start_block: dict[int, int] = {}

    # -- output ------------------------------------------------------------------------------------
    def log(self, event: str, **fields) -> None:
        record = {"event": event, "ev": self.s.ev, "index": getattr(self, "index", None), **fields}
        if self.out:
            self.out.write(json.dumps(record) + "\n")
            self.out.flush()
        if event in ("ready", "start", "commit", "aggregate", "global", "fee", "barred", "error", "done", "failed"):
            text = " ".join(f"{k}={v}" for k, v in fields.items())
            print(f"EV{self.index} #{self.s.ev} {event} {text}", file=sys.stderr, flush=True)

    def _start_model(self) -> ac.Params:
        if self.s.model is not None:
            return from_model(fedavg.decode(Path(self.s.model).read_bytes()))
        return ac.init_params(OBSERVATION_SIZE, len(ACTIONS), self.hyper.hidden, np.random.default_rng(self.s.seed))

    def send(self, wallet: Wallet, kind: str, to: str, data: bytes, gas: int, **info) -> str | None:
        try:
            tx_hash = wallet.send(to, data, gas)
        except RpcError as error:
            self.log("failed", kind=kind, reason=str(error), **info)
            return None
        self.pending[tx_hash] = {"kind": kind, "to": to, "data": data, "from": wallet.address, **info}
        return tx_hash

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> int:
        for token in (FIAT_TOKEN, ENERGY_TOKEN):
            self.send(self.wallet, "approve", token.to_checksum(),
                      encode_call("approve(address,uint256)", (V2V_MARKET, MAX_UINT)), GAS["approve"])
        self.log("ready", address=self.wallet.address)
        if self.s.first_window is None:
            self.s.first_window = self.wait_go()
        last = self.s.first_window + self.s.days - 1
        self.log("start", address=self.wallet.address, first_window=self.s.first_window, days=self.s.days,
                 selfish=self.s.selfish, pretrained=self.s.model is not None)
        seen = -1
        while True:
            if time.time() > self.s.deadline:
                self.log("error", reason="deadline passed before every duty was done", owed=self.open_duties(last))
                return 1
            head = self.chain.head()
            number, ts = int(head["number"], 16), int(head["timestamp"], 16)
            if number == seen:
                time.sleep(POLL_SECONDS)
                continue
            seen = number
            now_hour, target = ts // self.hour_seconds, (ts + self.s.block_time) // self.hour_seconds
            window, now_window = target // HOURS, ts // self.window_seconds
            self.window_start_block.setdefault(now_window, number)
            if self.s.first_window <= window <= last and (self.day is None or self.day.window != window):
                self.new_day(window)
            if self.day is not None and target > self.acted_hour and target // HOURS == self.day.window:
                self.act(target)
            if self.day is not None and now_window > self.day.window:
                self.close_day()
            self.housekeeping(now_hour, now_window, last)
            if now_window > last and not self.open_duties(last):
                self.log("done", windows=self.s.days)
                return 0

    def wait_go(self) -> int:
        """The first window, once the run has written it (every agent is ready)."""
        while time.time() < self.s.deadline:
            if self.s.go.exists():
                try:
                    return int(json.loads(self.s.go.read_text())["first_window"])
                except (ValueError, KeyError) as error:
                    raise AgentError(f"{self.s.go} does not say the first window: {error}") from None
            time.sleep(0.2)
        raise AgentError("the run did not say go before the deadline")

    def wants_to_skip(self) -> bool:
        """Selfish now? Always once with --selfish; with a lock, only the first EV to claim it."""
        if self.selfish_left:
            return True
        if self.s.selfish_lock is None or self.lock_tried:
            return False
        self.lock_tried = True
        try:
            descriptor = os.open(self.s.selfish_lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.write(descriptor, str(self.index).encode())
        os.close(descriptor)
        self.selfish_left = True
        return True

    def open_duties(self, last: int) -> list[str]:
        """What keeps the agent after its last window: fees not done with, an aggregate it owes,
        transactions without receipts."""
        duties = [f"fee of window {w} ({FEE_STATUS[s]})" for w, s in self.fees_due.items()]
        if self.skipped is not None:
            duties.append(f"settling window {self.skipped}")
        duties += [f"receipt of {p['kind']}" for p in self.pending.values()]
        if self.day is not None and self.day.window == last and not self.day.committed:
            duties.append("the last day's commitment")
        if last not in self.aggregated:
            duties.append(f"whether it aggregates round {last}")
        return duties

    def close_day(self) -> None:
        """The day's window is over (or the next is being planned): commit if not yet, follow its fee."""
        if not self.day.committed:
            self.finish_day()
        if self.day.window not in self.tracked:
            self.tracked.add(self.day.window)
            self.fees_due[self.day.window] = FEE_OPEN

    def new_day(self, window: int) -> None:
        if self.day is not None:
            self.close_day()
        days = draw_day(self.days_rng, self.tariff)
        self.day = Day(window, days, float(days.soc[0]))
        self.log("day", window=window, arrival=int(days.arrival[0]), departure=int(days.departure[0]),
                 soc=round(float(days.soc[0]), 4))

    def act(self, hour: int) -> None:
        """The policy's trade for `hour` (of the next block), or nothing if not parked."""
        day, h = self.day, hour % HOURS
        for skipped in range(max(self.acted_hour + 1, day.window * HOURS), hour):
            self.record_idle(skipped % HOURS, missed=True)
        self.acted_hour = hour
        d = day.days
        parked = int(d.arrival[0]) <= h < int(d.departure[0])
        if not parked:
            self.record_idle(h)
            if h >= int(d.departure[0]) and not day.committed:
                self.finish_day()
            return
        obs = observe(d, np.array([day.soc]), h)
        probs, _ = ac.policy(self.params, obs)
        action = int((probs.cumsum(axis=1) > self.policy_rng.random((1, 1))).argmax(axis=1)[0])
        result = step(d, np.array([day.soc]), h, np.array([action]))
        energy = float(result.energy[0])
        day.hours[h] = Hour(obs[0], action, float(np.log(probs[0, action])), float(ac.value(self.params, obs)[0][0]),
                            float(result.reward[0]), True, energy, float(result.profit[0]), float(result.score[0]))
        soc_before, day.soc = day.soc, float(result.soc[0])
        retail, buyback = self.bands[int(BAND_OF_HOUR[h])]
        price = v2v_price(retail, buyback)
        order = None
        if abs(energy) > 1e-9:
            tokens = 0 if energy > 0 else self.chain.view(ENERGY_TOKEN.to_checksum(), "balanceOf(address)",
                                                          (self.wallet.address,), ("uint256",))
            is_bid, wh = order_for(energy, tokens)
            if wh > 0:
                data = encode_call("placeBid(uint256,uint256)" if is_bid else "placeAsk(uint256,uint256)", (wh, price))
                tx = self.send(self.wallet, "order", V2V_MARKET, data, GAS["order"], hour=hour, bid=is_bid, wh=wh,
                               price=price)
                order = {"hour": hour, "bid": is_bid, "wh": wh, "price": price, "tx": tx}
                day.orders.append(order)
        self.log("hour", hour=hour, h=h, action=action, energy_kwh=round(energy, 4), soc_before=round(soc_before, 4),
                 soc=round(day.soc, 4), reward=round(float(result.reward[0]), 4),
                 mdp_profit=round(float(result.profit[0]), 4), order=order, retail=retail, buyback=buyback)

    def record_idle(self, h: int, missed: bool = False) -> None:
        """An hour the EV does not trade (not parked, or passed while the agent was busy)."""
        day = self.day
        if day.hours[h] is not None:
            return
        obs = observe(day.days, np.array([day.soc]), h)
        probs, _ = ac.policy(self.params, obs)
        day.hours[h] = Hour(obs[0], 2, float(np.log(probs[0, 2])), float(ac.value(self.params, obs)[0][0]))
        if missed and int(day.days.arrival[0]) <= h < int(day.days.departure[0]):
            self.log("missed", hour=day.window * HOURS + h)

    def finish_day(self) -> None:
        """At departure: the local PPO update on the day, the update put on the node and committed."""
        day = self.day
        day.committed = True
        for h in range(HOURS):
            if day.hours[h] is None:
                self.record_idle(h)
        self.report_hours(day, until=HOURS * (day.window + 1))
        t = trajectory(day.hours)
        if t.active.any():
            self.params = local_update(self.params, self.optimiser, t, self.hyper)
        model = to_model(self.params)
        blob = model.encode()
        try:
            stored = self.chain("grid_putModel", "0x" + blob.hex())
        except RpcError as error:
            self.log("error", reason=f"grid_putModel failed, round {day.window} not committed: {error}")
            return
        if stored.lower() != "0x" + model.hash.hex():
            self.log("error", reason=f"the node stored the update as {stored}, not 0x{model.hash.hex()}")
            return
        tx = self.send(self.wallet, "commit", POSOC_ADDRESS.to_checksum(), commitment(day.window, model.hash, len(blob)),
                       GAS["message"], round=day.window)
        self.log("commit", round=day.window, hash="0x" + model.hash.hex()[:16], size=len(blob), tx=tx,
                 reward=round(float(t.rewards.sum()), 3), mdp_profit=round(float(t.profit.sum()), 3))

    def report_hours(self, day: Day, until: int) -> None:
        """The charger's report of every parked hour of `day` before hour `until` not yet reported."""
        d = day.days
        for h in range(int(d.arrival[0]), int(d.departure[0])):
            hour = day.window * HOURS + h
            record = day.hours[h]
            if hour >= until or h in day.reported or record is None:
                continue
            day.reported.add(h)
            soc = record.obs[1] + record.energy / 42.0 if record.active else record.obs[1]
            data = encode_call("postReport(address,uint64,uint256,uint256,uint32,bool)", (
                self.wallet.address, hour, int(round(max(record.energy, 0) * 1000)),
                int(round(max(-record.energy, 0) * 1000)), int(round(min(max(soc, 0.0), 1.0) * 1_000_000)),
                h == int(d.departure[0]) - 1))
            self.send(self.charger, "report", EV_CHARGERS.to_checksum(), data, GAS["report"], hour=hour)

    # -- duties between hours ------------------------------------------------------------------------
    def housekeeping(self, now_hour: int, window: int, last: int) -> None:
        """Once per new block: reports, receipts, fees, the aggregate and the global model."""
        if self.day is not None:
            self.report_hours(self.day, until=now_hour)
        self.check_receipts()
        self.fees(now_hour)
        round_ = window - 1
        if round_ not in self.aggregated and self.s.first_window <= round_ <= last:
            self.maybe_aggregate(window)
        if round_ not in self.loaded and self.s.first_window <= round_ < last:
            self.maybe_load(round_, now_hour)

    def check_receipts(self) -> None:
        if not self.pending:
            return
        hashes = list(self.pending)
        replies = self.chain.batch([("eth_getTransactionReceipt", [h]) for h in hashes])
        for tx_hash, reply in zip(hashes, replies):
            receipt = reply.get("result")
            if receipt is None:
                continue
            info = self.pending.pop(tx_hash)
            if receipt["status"] != "0x1":
                reason = self.replay(info)
                self.log("failed", kind=info["kind"], tx=tx_hash, block=int(receipt["blockNumber"], 16), reason=reason,
                         **{k: v for k, v in info.items() if k not in ("kind", "to", "data", "from")})
                if "barred" in reason:
                    self.log("barred", hour=info.get("hour"), tx=tx_hash, reason=reason)

    def replay(self, info: dict) -> str:
        """The revert reason of a failed transaction, by calling it again on the head."""
        try:
            self.chain("eth_call", {"from": info["from"], "to": info["to"], "data": "0x" + info["data"].hex()}, "latest")
        except RpcError as error:
            return str(error).split("execution reverted: ", 1)[-1]
        return "reverted (passes on replay: out of gas or a state that has moved on)"

    def fees(self, now_hour: int) -> None:
        """Each ended window's fee: pay it, skip it once if selfish, settle after a confiscation."""
        for window, seen in sorted(self.fees_due.items()):
            if now_hour < (window + 1) * HOURS:
                continue
            profit, escrow, fee, status, mlag = self.chain.view(
                V2V_MARKET, "feeOf(address,uint64)", (self.wallet.address, window),
                ("int256", "uint256", "uint256", "uint8", "address"))
            if status == FEE_OPEN:
                continue
            if status != seen:
                self.log("fee", window=window, status=FEE_STATUS[status], profit=profit, escrow=escrow, fee=fee,
                         mlag=mlag)
            self.fees_due[window] = status
            if status in (FEE_NONE, FEE_PAID, FEE_SETTLED):
                del self.fees_due[window]
                if self.skipped == window:
                    self.skipped = None
                    self.log("fee", window=window, status="settled", barred=self.barred())
                continue
            decision = fee_decision(status, status == FEE_OWED and self.skipped is None and self.wants_to_skip())
            if decision == "skip":
                self.selfish_left, self.skipped = False, window
                self.log("fee", window=window, status="owed", action="skipped (selfish)", fee=fee)
            elif decision == "pay" and window != self.skipped and not self._sent_fee(window):
                tx = self.send(self.wallet, "fee", V2V_MARKET, encode_call("payFee(uint64)", (window,)), GAS["fee"],
                               window=window)
                self.log("fee", window=window, action="paid", fee=fee, tx=tx)
            elif decision == "settle" and not self._sent_fee(window):
                if self.probed_hour is None:
                    self.probe_barred(now_hour)
                elif now_hour > self.probed_hour + 1:
                    tx = self.send(self.wallet, "fee", V2V_MARKET, encode_call("payFee(uint64)", (window,)),
                                   GAS["fee"], window=window)
                    self.log("fee", window=window, action="settling after confiscation", tx=tx)

    def _sent_fee(self, window: int) -> bool:
        return any(p["kind"] == "fee" and p.get("window") == window for p in self.pending.values())

    def probe_barred(self, now_hour: int) -> None:
        """A barred EV's 1 Wh bid, sent to show the chain refuses it; settled an hour later."""
        self.probed_hour = now_hour
        retail, buyback = self.bands[int(BAND_OF_HOUR[(now_hour + 1) % HOURS])]
        self.send(self.wallet, "order", V2V_MARKET, encode_call("placeBid(uint256,uint256)", (1, retail)),
                  GAS["order"], hour=now_hour + 1, bid=True, wh=1, price=retail, probe=True)
        self.log("barred", hour=now_hour, probe="sent a 1 Wh bid while confiscated", barred=self.barred())

    def barred(self) -> bool:
        return bool(self.chain.view(V2V_MARKET, "barred(address)", (self.wallet.address,), ("bool",)))

    def maybe_aggregate(self, window: int) -> None:
        """As window `window`'s mLAG: FedAvg of round window − 1's committed updates, posted once."""
        view = self.chain("grid_posoc")
        round_ = window - 1
        if (view.get("drawnWindow") or 0) < window:
            return
        if view["drawnWindow"] > window or not view.get("mlag") or view["mlag"].lower() != self.wallet.address.lower():
            self.aggregated.add(round_)
            return
        self.aggregated.add(round_)
        first = max(self.window_start_block.get(round_, 1) - 2, 1)
        head = int(self.chain("eth_blockNumber"), 16)
        blocks = self.chain.rpcs[0].results([("eth_getBlockByNumber", [hex(n), True]) for n in range(first, head + 1)])
        committed = committed_updates(blocks, round_, self.window_seconds, self.evs)
        blobs: dict[int, bytes | None] = {}
        for k, (model_hash, _size) in sorted(committed.items()):
            try:
                found = self.chain("grid_getModel", "0x" + model_hash.hex())
            except RpcError as error:
                self.log("error", reason=f"grid_getModel for EV{k}: {error}")
                found = None
            blobs[k] = bytes.fromhex(found[2:]) if found else None
        included, models = fedavg.includable(committed, blobs, MAX_CHALLENGE_BYTES)
        if not models:
            self.log("aggregate", round=round_, included=[], reason="no committed update could be fetched")
            return
        global_model = fedavg.fedavg(models)
        stored = self.chain("grid_putModel", "0x" + global_model.encode().hex())
        tx = self.send(self.wallet, "aggregate", POSOC_ADDRESS.to_checksum(),
                       aggregate(round_, global_model.hash, included), GAS["message"], round=round_)
        self.log("aggregate", round=round_, committed=sorted(committed), included=included, hash=stored[:18], tx=tx)

    def maybe_load(self, round_: int, now_hour: int) -> None:
        """Load round `round_`'s global model once the chain has it; keep the local one past arrival."""
        model = self.chain("grid_posoc")["model"]
        posted = [a for a in model.get("aggregates", []) if a and a.get("round") == round_ and not a.get("voided")]
        if posted:
            self.loaded.add(round_)
            blob = self.chain("grid_getModel", posted[0]["hash"])
            if blob is None:
                self.log("global", round=round_, loaded=False, reason="no node serves the global model")
                return
            global_model = fedavg.decode(bytes.fromhex(blob[2:]))
            if global_model.hash.hex() != posted[0]["hash"][2:].lower():
                self.log("global", round=round_, loaded=False, reason="the served model's hash differs")
                return
            self.params = from_model(global_model)
            self.log("global", round=round_, loaded=True, hash=posted[0]["hash"][:18], included=posted[0].get("included"))
            return
        day = self.day
        if day is not None and day.window == round_ + 1 and now_hour % HOURS >= int(day.days.arrival[0]):
            self.loaded.add(round_)
            self.log("global", round=round_, loaded=False, reason="no aggregate by arrival: trading on the local model")


def parse(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m market.agents.ev_agent", description=__doc__.split("\n\n")[0])
    nodes = parser.add_mutually_exclusive_group(required=True)
    nodes.add_argument("--rpc", help="comma-separated node RPC URLs (the first that answers is used)")
    nodes.add_argument("--localnet", type=Path, help="a localnet.json to read the URLs from once the nodes run")
    parser.add_argument("--node", type=int, default=0, help="with --localnet: the node to talk to first")
    parser.add_argument("--ev", type=int, required=True, help="the EV's devnet account number (#1..#19)")
    start = parser.add_mutually_exclusive_group(required=True)
    start.add_argument("--first-window", type=int, help="the first window (day) to trade")
    start.add_argument("--go", type=Path, help='wait for this JSON file {"first_window": W}, written by the run')
    parser.add_argument("--days", type=int, required=True, help="windows to trade")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--selfish", action="store_true", help="skip the first mining fee owed, then settle")
    parser.add_argument("--selfish-lock", type=Path, default=None,
                        help="be selfish only if first to create this file when owing a fee")
    parser.add_argument("--model", type=Path, default=None, help="starting model (fixed-point bytes)")
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines of what the agent does here")
    parser.add_argument("--deadline", type=float, default=float("inf"), help="Unix time by which the agent stops")
    parser.add_argument("--block-time", type=int, default=1)
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")
    return Settings(args.rpc.split(",") if args.rpc else args.localnet, args.ev, args.first_window, args.days, args.seed, args.selfish,
                    args.selfish_lock, args.go, args.model, args.out, args.deadline, args.block_time, args.node)


def main(argv: list[str] | None = None) -> int:
    settings = parse(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return EVAgent(settings).run()
    except KeyboardInterrupt:
        print(f"EV agent #{settings.ev}: stopped", file=sys.stderr)
        return 130
    except (AgentError, RpcError, fedavg.ModelError) as error:
        print(f"EV agent #{settings.ev}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
