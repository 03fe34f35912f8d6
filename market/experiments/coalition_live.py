"""`gridnode sim coalition --live`: proof of energy generation on a real localnet, with the
simulation's prosumers metered on chain, and the consensus checked from the chain's history.

Phases, each a small function (CometBFT's e2e runner): setup (keys and a PoEG genesis with
`prosumers` funded, registered and metered accounts, `poeg_genesis_document`), start
(`gridnode localnet` on those data dirs), load (every slot the meter oracles post the slot's
synthetic readings, `market.agents.meter_driver`, and the run waits for the slot to settle),
perturb (`--kill-producer-at`: SIGKILL the node first in the order, watch its fallback
produce, restart it a slot later), then test, over what every node recorded:

* settled: every slot of the run has a settlement record, in a block that carries only the
  settlement transaction;
* agreement: every node has the same block hash at every height up to the lowest head;
* producers: every block is sealed by the first of the order in its header, or by a fallback
  whose block slashes every validator the order put before it, and only validators the run
  killed were passed over;
* draw: the first of each settled order is the WRS draw of eq. 3.16 replayed from the
  chain (the settlement's coalition scores, the seed keccak(hash of block B − seedLag ‖ slot));
* chi-square: over the slots, how often each validator was drawn first against the sum of
  its per-slot probabilities (its staked coalitions' share of the staked score), Pearson's
  statistic with one degree of freedom fewer than validators expected to be drawn; it passes
  at the 1 % level. It needs many slots (≥ 5 expected draws per validator) to mean anything;
* kill: the next block after the kill comes from a fallback within timeout + block time
  (plus a second of scheduling slack), grid_poeg records the slash, and later slots settle.

Everything is bounded in time; nodes are stopped on exit, on errors and on Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from market.agents.meter_driver import MeterDriver, Posted, Rpc
from market.experiments.localnet import Localnet, agreement, blocks as fetch_blocks, live_run, wait_for

POEG_TO = "0x6772696400000000000000000000000000000003"
SETTLE_PREFIX = "0x01"
CHI_SQUARE_LEVEL = 0.01
MIN_EXPECTED = 5
"""Pearson's rule of thumb: below 5 expected draws in a cell the χ² approximation is not to be trusted."""
KILL_SLACK_SECONDS = 1.0
"""Scheduling slack on top of timeout + block time: five nodes share this machine's cores."""


@dataclass(frozen=True)
class LiveSettings:
    nodes: int = 5
    prosumers: int = 20
    slots: int = 20
    slot_seconds: int = 6
    seed: int = 0
    dist: str = "uniform"
    kill_producer_at: int | None = None
    """Run slot index (0-based) at whose start the drawn producer is SIGKILLed."""
    restart: bool = True
    """Start the killed node again once the slot after the kill has settled."""
    block_time: int = 1
    timeout: int = 2
    """PoEG's fallback step: the k-th in the order may seal k·timeout after the first."""
    directory: Path | None = None

    def validate(self) -> None:
        if not 2 <= self.nodes <= 16:
            raise ValueError("--nodes takes 2..16 (a kill needs a fallback)")
        if not 10 <= self.prosumers <= 50:
            raise ValueError("--prosumers takes 10..50 under --live")
        if self.slots < 1 or self.slot_seconds < self.block_time + self.timeout + 1:
            raise ValueError("--slots must be positive and --slot-seconds at least block time + timeout + 1 "
                             f"({self.block_time + self.timeout + 1}), so a killed producer's slot still settles")
        if self.kill_producer_at is not None and not 0 <= self.kill_producer_at < self.slots - 1:
            raise ValueError(f"--kill-producer-at takes a run slot 0..{self.slots - 2} (the chain must go on after it)")


# -- the localnet ------------------------------------------------------------------------------
def poeg_localnet(root: Path, settings: LiveSettings) -> Localnet:
    """The shared localnet runner with the PoEG genesis of `settings` (funded, metered prosumers)."""
    from genesis.devnet import poeg_genesis_document

    return Localnet(root, "poeg", settings.nodes, lambda validators: poeg_genesis_document(
        validators, settings.prosumers, settings.slot_seconds, settings.seed, settings.dist, timeout=settings.timeout),
        settings.block_time, settings)


# -- load and perturb ----------------------------------------------------------------------------
def _head(rpc: Rpc) -> dict:
    return rpc("eth_getBlockByNumber", "latest", False)


def _order(block: dict) -> list[str]:
    extra = bytes.fromhex(block["extraData"][2:])
    return ["0x" + extra[i:i + 20].hex() for i in range(0, len(extra), 20)]


def _kill_producer(net: Localnet, say) -> dict:
    """SIGKILL the node first in the order; what `_after_kill` needs to time its fallback."""
    view = net.rpc(net.live()[0])("grid_poeg")
    victim = net.node_of(view["producer"])
    observer = next(i for i in net.live() if i != victim)
    head = int(_head(net.rpc(observer))["number"], 16)
    net.kill(victim)
    say(f"  killed node{victim} ({view['producer']}), first in the order at block {head}")
    return {"node": victim, "validator": view["producer"], "expected_fallback": view["fallbackOrder"][0],
            "head_before": head, "observer": observer, "killed_at": time.monotonic()}


def _after_kill(net: Localnet, kill: dict, say) -> dict:
    """The next block's producer and delay after the kill, and the slash grid_poeg records."""
    s = net.settings
    observer, victim = net.rpc(kill["observer"]), kill["validator"].lower()
    bound = s.timeout + s.block_time + KILL_SLACK_SECONDS

    def next_block():
        block = _head(observer)
        return block if int(block["number"], 16) > kill["head_before"] and block["miner"].lower() != victim else None

    block = wait_for("a block from a fallback", 4 * bound + 10, next_block, poll=0.05)
    latency = time.monotonic() - kill["killed_at"]
    number = int(block["number"], 16)
    parent = observer("eth_getBlockByNumber", hex(number - 1), False)
    gap = int(block["timestamp"], 16) - int(parent["timestamp"], 16)
    penalties = wait_for("the slash in grid_poeg", 30, lambda: [
        p for p in observer("grid_poeg")["penalties"] if p["validator"].lower() == victim])
    penalty = penalties[0]
    say(f"  block {number} by the fallback {_name(net, block['miner'])} {latency:.1f} s after the kill "
        f"(header gap {gap} s, bound {bound:.0f} s); slashed {penalty['amount']} for '{penalty['reason']}' "
        f"in block {penalty['number']}")
    ok = (block["miner"].lower() == kill["expected_fallback"].lower() and latency <= bound
          and gap <= s.block_time + s.timeout and penalty["reason"] == "silent producer"
          and penalty["number"] == number)
    return {"slot_index": s.kill_producer_at, "node": kill["node"], "validator": kill["validator"],
            "head_before": kill["head_before"], "next_block": number, "next_producer": block["miner"],
            "expected_fallback": kill["expected_fallback"], "seconds_to_next_block": round(latency, 2),
            "header_gap_seconds": gap, "bound_seconds": bound, "penalty": penalty, "ok": ok}


def _drive(net: Localnet, driver: MeterDriver, say) -> tuple[list[dict], list[Posted], dict | None]:
    """Post each slot's readings early in the slot, wait for its settlement, record it."""
    s = net.settings
    observer = lambda: net.rpc(net.live()[0])  # noqa: E731 - the first node still up
    first = int(_head(observer())["timestamp"], 16) // s.slot_seconds + 1
    records, posted, kill = [], [], None
    restart_after: int | None = None
    for index in range(s.slots):
        slot = first + index
        wait_for(f"a block in slot {slot}", 3 * s.slot_seconds + 30,
              lambda: int(_head(observer())["timestamp"], 16) // s.slot_seconds >= slot)
        killing = _kill_producer(net, say) if index == s.kill_producer_at else None
        posted += driver.post(slot, [net.rpc(i) for i in net.live()])  # after a kill: only to nodes still up
        if killing is not None:
            kill = _after_kill(net, killing, say)
            restart_after = slot + 1
        view = wait_for(f"the settlement of slot {slot}", 3 * s.slot_seconds + 30,
                     lambda: _settled_view(observer(), slot))
        settled = view["lastSettlement"]
        record = {"slot": slot, "index": index, "view_block": view["blockNumber"],
                  "producer": view["producer"], "fallbackOrder": view["fallbackOrder"],
                  "validators": view["validators"], "seedLag": view["seedLag"], "settlement": settled}
        records.append(record)
        if settled["slot"] != slot:
            say(f"slot {slot} ({index + 1}/{s.slots}): its settlement record was overwritten before it was read")
            continue
        miner = settled["minerCoalition"]
        owner = settled["coalitions"][miner]["validator"] if miner is not None else None
        say(f"slot {slot} ({index + 1}/{s.slots}): settled in block {settled['blockNumber']} by "
            f"{_name(net, settled['producer'])}; {len(settled['coalitions'])} coalitions, miner "
            f"{miner if miner is not None else '-'} ({_name(net, owner) if owner else '-'}), reward "
            f"{settled['reward']} Wh; next producer {_name(net, view['producer'])}, fallbacks "
            f"{','.join(_name(net, v) for v in view['fallbackOrder'])}")
        if restart_after is not None and slot >= restart_after and s.restart and net.down:
            net.restart(kill["node"])
            say(f"  restarting node{kill['node']}")
            restart_after = None
    return records, posted, kill


def _settled_view(rpc: Rpc, slot: int) -> dict | None:
    """grid_poeg once its last settlement is of `slot` or later."""
    view = rpc("grid_poeg")
    return view if view["lastSettlement"] and view["lastSettlement"]["slot"] >= slot else None


def _name(net: Localnet, address: str | None) -> str:
    node = net.node_of(address) if address else None
    return f"node{node}" if node is not None else str(address)


# -- the test phase ----------------------------------------------------------------------------
def _producers(blocks: list[dict], penalties: list[dict], killed: set[str]) -> dict:
    """Each block by the first of its header's order, or by a fallback whose block slashes
    every validator before it; only killed validators may be passed over."""
    slashed_at = {(p["number"], p["validator"].lower()) for p in penalties}
    first, fallback, wrong = 0, [], []
    for block in blocks:
        number, order = int(block["number"], 16), [a.lower() for a in _order(block)]
        position = order.index(block["miner"].lower())
        if position == 0:
            first += 1
            continue
        skipped = order[:position]
        entry = {"number": number, "producer": block["miner"], "position": position, "skipped": skipped}
        if all((number, v) in slashed_at for v in skipped) and set(skipped) <= killed:
            fallback.append(entry)
        else:
            wrong.append(entry)
    return {"blocks": len(blocks), "by_first": first, "by_fallback": fallback, "wrong": wrong[:20],
            "ok": not wrong}


def _draws(records: list[dict], by_number: dict[int, dict], penalties: list[dict]) -> list[dict]:
    """Per settled slot: the coalition validators' draw weights at the settling block, the first
    of the order it wrote (the next header's extra data) and the replayed eq. 3.16 draw."""
    from consensus.sampling import derive_seed, weighted_choice
    from eth_utils import keccak

    draws = []
    for record in records:
        settled = record["settlement"]
        if settled["slot"] != record["slot"]:
            continue
        number = settled["blockNumber"]
        unstaked = {p["validator"].lower() for p in penalties if p["number"] <= number}
        coalitions = settled["coalitions"]
        weights = [c["score"] if c["validator"].lower() not in unstaked else 0 for c in coalitions]
        owners = [c["validator"].lower() for c in coalitions]
        drawn = _order(by_number[number + 1])[0] if number + 1 in by_number else None
        replay = None
        if any(weights):
            seed = keccak(bytes.fromhex(by_number[number - record["seedLag"]]["hash"][2:])
                          + record["slot"].to_bytes(32, "big"))
            replay = owners[weighted_choice(weights, derive_seed(seed, 0))]
        total = sum(weights)
        probability: dict[str, float] = {}
        for owner, weight in zip(owners, weights):
            if weight:
                probability[owner] = probability.get(owner, 0.0) + weight / total
        draws.append({"slot": record["slot"], "block": number, "drawn": drawn, "replayed": replay,
                      "probability": probability})
    return draws


def chi_square(draws: list[dict], validators: list[str]) -> dict:
    """Pearson's statistic of the validators' first places against Σ_slots P(drawn), over the
    slots where some coalition scored; df = validators with a positive expectation − 1."""
    from scipy.stats import chi2

    counted = [d for d in draws if d["probability"] and d["drawn"] is not None]
    observed = {v.lower(): 0 for v in validators}
    expected = {v.lower(): 0.0 for v in validators}
    for d in counted:
        observed[d["drawn"].lower()] += 1
        for v, p in d["probability"].items():
            expected[v] += p
    cells = [v for v in expected if expected[v] > 0]
    statistic = sum((observed[v] - expected[v]) ** 2 / expected[v] for v in cells)
    df = len(cells) - 1
    p_value = float(chi2.sf(statistic, df)) if df > 0 else 1.0
    outside = sum(observed[v] for v in observed if v not in cells)
    return {"slots": len(counted), "observed": observed, "expected": {v: round(e, 3) for v, e in expected.items()},
            "statistic": round(statistic, 3), "df": df, "p_value": round(p_value, 4),
            "min_expected": round(min((expected[v] for v in cells), default=0.0), 2),
            "valid": min((expected[v] for v in cells), default=0.0) >= MIN_EXPECTED,
            "ok": p_value >= CHI_SQUARE_LEVEL and outside == 0}


def _check(net: Localnet, records: list[dict], posted: list[Posted], kill: dict | None, say) -> dict:
    s = net.settings
    if kill is not None and kill["node"] in net.restarted:
        try:
            net.wait_restarted(kill["node"])
            kill["restarted"] = True
        except RuntimeError as error:
            kill.update(restarted=False, restart_error=str(error))
            say(f"  {error}")
    agreed = agreement(net, say)
    rpc = net.rpc(next(i for i in net.live()), timeout=30)
    wait_for("a block after the last settlement", 10 * s.block_time + 30, lambda: int(rpc("eth_blockNumber"), 16) >
          max((r["settlement"]["blockNumber"] for r in records), default=0))
    head = int(rpc("eth_blockNumber"), 16)
    by_number = {int(b["number"], 16): b for b in fetch_blocks(rpc, 1, head)}
    by_number[0] = fetch_blocks(rpc, 0, 0)[0]
    view = rpc("grid_poeg")
    penalties = view["penalties"]
    killed = {kill["validator"].lower()} if kill else set()

    settled_ok, missing = [], []
    for record in records:
        settled = record["settlement"]
        if settled["slot"] != record["slot"]:
            missing.append(record["slot"])
            continue
        block = rpc("eth_getBlockByNumber", hex(settled["blockNumber"]), True)
        txs = block["transactions"]
        only = len(txs) == 1 and txs[0]["to"].lower() == POEG_TO and txs[0]["input"].startswith(SETTLE_PREFIX) \
            and txs[0]["from"].lower() == block["miner"].lower()
        (settled_ok if only else missing).append(record["slot"])
    settled = {"slots": len(records), "settled": len(settled_ok), "not_settled": missing, "ok": not missing}

    receipts = rpc.results([("eth_getTransactionReceipt", [p.tx_hash]) for p in posted])
    settling = {r["slot"]: r["settlement"]["blockNumber"] for r in records}
    on_time = 0
    failed = []
    for p, receipt in zip(posted, receipts):
        if receipt is None or receipt["status"] != "0x1":
            failed.append({"prosumer": p.prosumer, "slot": p.slot, "tx": p.tx_hash})
            continue
        number = int(receipt["blockNumber"], 16)
        if int(by_number[number]["timestamp"], 16) // s.slot_seconds == p.slot and number < settling.get(p.slot, 0):
            on_time += 1
    readings = {"posted": len(posted), "in_their_slot": on_time, "failed": failed[:20], "ok": not failed}

    producers = _producers([b for n, b in sorted(by_number.items()) if n >= 1], penalties, killed)
    draws = _draws(records, by_number, penalties)
    mismatched = [d for d in draws if d["replayed"] is not None and d["replayed"] != (d["drawn"] or "").lower()]
    draw = {"replayed": sum(d["replayed"] is not None for d in draws), "mismatched": mismatched[:20],
            "ok": not mismatched}
    chi = chi_square(draws, net.validators)
    after = [r for r in records if kill and r["slot"] > records[kill["slot_index"]]["slot"]]
    if kill is not None:
        kill = {**kill, "slots_settled_after": sum(r["settlement"]["slot"] == r["slot"] for r in after),
                "ok": kill["ok"] and bool(after) and all(r["settlement"]["slot"] == r["slot"] for r in after)
                and kill.get("restarted", True)}
    checks = {"settled": settled, "readings": readings, "agreement": agreed, "producers": producers,
              "draw": draw, "chi_square": chi}
    if kill is not None:
        checks["kill"] = kill
    return checks


# -- the run -------------------------------------------------------------------------------------
def run_live(settings: LiveSettings, say: Callable[[str], None] | None = None) -> dict:
    """Setup, start, load (with the kill), test, cleanup; returns the records and the checks."""
    from genesis.devnet import live_prosumer_accounts

    settings.validate()
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    started = time.monotonic()
    with live_run(settings.directory, "gridnode-poeg-live-") as (root, cleanup):
        net = poeg_localnet(root, settings)
        net.setup()
        say(f"starting a {settings.nodes}-node PoEG localnet with {settings.prosumers} prosumers in {root} …")
        cleanup.callback(net.stop)
        net.start()
        driver = MeterDriver(live_prosumer_accounts(settings.prosumers), net.rpc(0), settings.dist, settings.seed)
        say(f"up after {time.monotonic() - started:.0f} s; {settings.slots} slots of {settings.slot_seconds} s")
        records, posted, kill = _drive(net, driver, say)
        checks = _check(net, records, posted, kill, say)
    return {"settings": {"nodes": settings.nodes, "prosumers": settings.prosumers, "slots": settings.slots,
                         "slot_seconds": settings.slot_seconds, "block_time": settings.block_time,
                         "timeout": settings.timeout, "seed": settings.seed, "dist": settings.dist,
                         "kill_producer_at": settings.kill_producer_at},
            "validators": net.validators, "seconds": round(time.monotonic() - started, 1),
            "records": records, "checks": checks, "passed": all(c["ok"] for c in checks.values())}
