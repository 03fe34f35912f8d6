"""`gridnode sim v2v --live`: proof of state of charge on a real localnet, with EV agents as
separate processes trading on the V2VMarket and learning federated through the chain.

Phases (as `coalition_live`): setup (keys, the PoSOC genesis of `posoc_genesis_document` with
its EVs, chargers, energy tokens and V2VMarket; a starting model, pretrained off chain with
`federated.train` when `--pretrain` asks), start (the shared `localnet.Localnet`), load (one
`market.agents.ev_agent` process per EV, each over JSON-RPC to its own node, for `days` windows;
each stops by itself), then collect from the chain (charger reports, orders, fills, fees, the
mLAG of each window, model commitments and aggregates, `grid_checkAggregate` on every node) and
test:

* agreement: every node has the same block at every height;
* fills: V2V fills between two different EVs;
* reports: every report the chargers sent is on chain;
* federation: each traded round has commitments and one aggregate, which every node checks;
* fees: fees were charged and paid;
* selfish (with `--selfish K`): EV K's skipped fee was confiscated, its orders were refused while
  it was barred, and paying lifted the bar;
* agents: every agent process exited cleanly.

The per-day figures (energy bought off/mid/on-peak and sold on-peak, each EV's score and profit,
the mLAG, fees paid and confiscated) and the Fig. 4.8-like PNG come from what the chain recorded;
the grid side (what the book did not match, traded at the tariff) is computed from the reports and
the fills. Against it, the same days are replayed off chain by the no-federation baseline (each EV
learning alone from the same start) and by a federated population, and every population's final
model is played greedily on one set of test stays (`federated.evaluate`)."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import eth_abi
import numpy as np
from eth_utils import keccak

from market.agents.ev_agent import HOURS, V2V_MARKET, day_rng, draw_day
from market.agents.meter_driver import Rpc, RpcError
from market.experiments.localnet import Localnet, agreement, blocks, live_run, wait_for

EV_CHARGERS = "0x6772696400000000000000000000000000000018"
POSOC = "0x6772696400000000000000000000000000000004"


def _events() -> dict[str, tuple[str, list[str], list[str], list[str]]]:
    """topic0 → (name, indexed types, data types, data-first order) of the events the run reads,
    from the shipped ABIs."""
    from importlib import resources

    out = {}
    for file in ("v2v_market.abi.json", "ev_chargers.abi.json"):
        for entry in json.loads(resources.files("market.contracts").joinpath(file).read_text()):
            if entry["type"] != "event":
                continue
            types = [i["type"] for i in entry["inputs"]]
            signature = f"{entry['name']}({','.join(types)})"
            out["0x" + keccak(text=signature).hex()] = (
                entry["name"], [i["type"] for i in entry["inputs"] if i.get("indexed")],
                [i["type"] for i in entry["inputs"] if not i.get("indexed")], [bool(i.get("indexed")) for i in entry["inputs"]])
    return out


TOPICS = _events()
BANDS = ("off", "mid", "on")
GO_LEAD_SECONDS = 3
"""From go to an agent's first order: its approvals are sent before it says ready."""


@dataclass(frozen=True)
class LiveSettings:
    nodes: int = 5
    evs: int = 10
    days: int = 3
    hour_seconds: int = 2
    seed: int = 0
    selfish: int | str | None = None
    """The EV index (0-based, genesis order) that skips the first fee it owes, or "first": whichever EV
    owes a fee first (so a short run is sure to have one)."""
    pretrain: int = 0
    """Windows of off-chain federated training for the starting model (0: a fresh model)."""
    grace_hours: int | None = None
    """Hours after a window's end before an unpaid fee is confiscated (default: the market's, one window)."""
    block_time: int = 1
    directory: Path | None = None

    def validate(self) -> None:
        if not 1 <= self.nodes <= 16:
            raise ValueError("--nodes takes 1..16")
        if not 2 <= self.evs <= 19:
            raise ValueError("--evs takes 2..19 under --live (the devnet's accounts #1..#19)")
        if not 1 <= self.days <= 365:
            raise ValueError("--days takes 1..365")
        if self.hour_seconds < self.block_time:
            raise ValueError("--hour-seconds must be at least the block time (1 s): every hour needs a block")
        if self.selfish is not None and self.selfish != "first" and not (
                isinstance(self.selfish, int) and 0 <= self.selfish < self.evs):
            raise ValueError(f"--selfish takes an EV index 0..{self.evs - 1} or 'first'")
        if not 0 <= self.pretrain <= 10_000:
            raise ValueError("--pretrain takes 0..10000 windows")
        if self.grace_hours is not None and not 1 <= self.grace_hours <= 24 * 7:
            raise ValueError("--grace-hours takes 1..168")


def posoc_localnet(root: Path, s: LiveSettings) -> Localnet:
    """The shared localnet runner with the PoSOC devnet genesis (`--grace-hours` set on the market)."""
    from genesis.devnet import posoc_genesis_document

    def document_for(validators):
        document = posoc_genesis_document(validators, evs=s.evs, hour_seconds=s.hour_seconds)
        if s.grace_hours is not None:
            document["contracts"]["V2VMarket"].setdefault("params", {})["graceHours"] = s.grace_hours
        return document

    return Localnet(root, "posoc", s.nodes, document_for, s.block_time, s)


def ev_numbers(evs: int) -> list[int]:
    """Devnet account numbers of the EVs, in genesis order (the last `evs` of #1..#19)."""
    from genesis.devnet import DEVNET_ACCOUNTS

    return list(range(DEVNET_ACCOUNTS - evs, DEVNET_ACCOUNTS))


def start_model(s: LiveSettings, say) -> bytes:
    """The model every agent starts from, as fixed-point bytes: `pretrain` windows of off-chain
    federated training (Table 4.1's price draws), or a fresh one from the seed."""
    from market.economics import actor_critic as ac
    from market.economics.federated import Setup, to_model, train
    from market.economics.v2v import ACTIONS, OBSERVATION_SIZE

    if s.pretrain:
        started = time.monotonic()
        params = train(Setup(evs=s.evs, windows=s.pretrain), s.seed).models[0]
        say(f"pretrained off chain: {s.pretrain} federated windows of {s.evs} EVs in {time.monotonic() - started:.1f} s")
    else:
        params = ac.init_params(OBSERVATION_SIZE, len(ACTIONS), ac.Hyper().hidden, np.random.default_rng(s.seed))
    return to_model(params).encode()


# -- load -----------------------------------------------------------------------------------------
def _spawn_agents(net: Localnet, s: LiveSettings, model: Path, deadline: float) -> list[subprocess.Popen]:
    """One agent per EV, each on its own node first, told the first window through go.json; started while
    the nodes boot (they read the URLs from localnet.json)."""
    agents_dir = net.root / "agents"
    agents_dir.mkdir(exist_ok=True)
    processes = []
    for k, number in enumerate(ev_numbers(s.evs)):
        command = [sys.executable, "-m", "market.agents.ev_agent", "--localnet", str(net.root / "localnet.json"),
                   "--node", str(k % s.nodes), "--ev", str(number),
                   "--go", str(net.root / "go.json"), "--days", str(s.days), "--seed", str(s.seed), "--model", str(model),
                   "--out", str(agents_dir / f"ev{k}.jsonl"), "--deadline", str(deadline),
                   "--block-time", str(s.block_time)]
        if s.selfish == k:
            command.append("--selfish")
        elif s.selfish == "first":
            command += ["--selfish-lock", str(net.root / "selfish.lock")]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(agents_dir / f"ev{k}.log", "w"),
                                          start_new_session=True))
    return processes


def _say_go(net: Localnet, s: LiveSettings, processes: list[subprocess.Popen], say) -> int:
    """Wait until every agent is ready (bounded), then tell them the first window."""
    def ready() -> bool:
        for k, process in enumerate(processes):
            if process.poll() is not None:
                raise RuntimeError(f"EV agent {k} exited while starting: "
                                   + (net.root / "agents" / f"ev{k}.log").read_text()[-800:].strip())
        files = [net.root / "agents" / f"ev{k}.jsonl" for k in range(len(processes))]
        return all(f.exists() and '"ready"' in f.read_text() for f in files)

    wait_for("every EV agent to be ready", 120, ready, poll=0.3)
    first = _first_window(net.rpc(net.live()[0]), s)
    go = net.root / "go.json"
    go.with_suffix(".tmp").write_text(json.dumps({"first_window": first}))
    go.with_suffix(".tmp").rename(go)
    return first


def _stop(processes: list[subprocess.Popen]) -> None:
    from cli.localnet import stop_processes

    stop_processes(processes, timeout=10)


def _follow(net: Localnet, s: LiveSettings, first: int, processes: list[subprocess.Popen], deadline: float,
            say) -> dict[int, dict]:
    """Until every agent has stopped: grid_posoc at each window's draw (the scores it drew from and
    the mLAG), one progress line per window."""
    draws: dict[int, dict] = {}
    rpc = net.rpc(net.live()[0], timeout=5)
    while any(p.poll() is None for p in processes):
        if time.time() > deadline + 30:
            say("  agents still running past their deadline: stopping them")
            break
        try:
            view = rpc("grid_posoc")
        except RpcError:
            time.sleep(0.5)
            continue
        drawn = view.get("drawnWindow")
        if drawn and drawn not in draws and drawn >= first:
            draws[drawn] = {"mlag": view["mlag"], "block": view["blockNumber"],
                            "scores": [e["windowScore"] for e in view["evs"]]}
            if drawn - 1 >= first:
                say(f"window {drawn - 1} closed at block {view['blockNumber']}: scores "
                    f"{[e['windowScore'] for e in view['evs']]} Wh; mLAG of window {drawn}: {_ev_name(view, view['mlag'])}")
        time.sleep(0.5)
    return draws


def _ev_name(view: dict, address: str | None) -> str:
    evs = [e["address"].lower() for e in view["evs"]]
    return f"EV{evs.index(address.lower())}" if address and address.lower() in evs else str(address)


# -- collect ------------------------------------------------------------------------------------
def logs(rpc: Rpc, address: str, first: int, last: int) -> list[dict]:
    """Every decoded log of `address` in blocks first..last, with its block number and timestamp."""
    out = []
    for start in range(first, last + 1, 5_000):
        raw = rpc("eth_getLogs", {"address": address, "fromBlock": hex(start), "toBlock": hex(min(start + 4_999, last))})
        for entry in raw:
            if entry["topics"][0] not in TOPICS:
                continue
            name, indexed, data, order = TOPICS[entry["topics"][0]]
            topics = iter(eth_abi.decode((t,), bytes.fromhex(topic[2:]))[0]
                          for t, topic in zip(indexed, entry["topics"][1:]))
            rest = iter(eth_abi.decode(data, bytes.fromhex(entry["data"][2:])))
            values = [next(topics) if is_indexed else next(rest) for is_indexed in order]
            out.append({"event": name, "values": values, "block": int(entry["blockNumber"], 16),
                        "tx": entry["transactionHash"]})
    return out


def _agent_records(root: Path, evs: int) -> list[list[dict]]:
    records = []
    for k in range(evs):
        path = root / "agents" / f"ev{k}.jsonl"
        records.append([json.loads(line) for line in path.read_text().splitlines()] if path.exists() else [])
    return records


def collect(net: Localnet, s: LiveSettings, first: int, draws: dict[int, dict], records: list[list[dict]]) -> dict:
    """What the chain recorded over the run, per window and EV; beside it, each agent's own
    profit at the V2V price (`mdp_profit`, the thesis's measure, from its commit record)."""
    from consensus.rules.posoc import band, hour_score_int, price_factor_ppm

    rpc = net.rpc(net.live()[0], timeout=30)
    head = int(rpc("eth_blockNumber"), 16)
    view = rpc("grid_posoc")
    evs = [e["address"] for e in view["evs"]]
    index = {a.lower(): k for k, a in enumerate(evs)}
    tariff = view["tariff"]
    retail = {b: tariff[b] for b in BANDS}
    buyback = {b: tariff[b] // 2 for b in BANDS}
    off, mid, on = tariff["off"], tariff["mid"], tariff["on"]
    delta = {"off": 0, "mid": price_factor_ppm(mid, off), "on": price_factor_ppm(on, off)}
    events = logs(rpc, V2V_MARKET, 1, head) + logs(rpc, EV_CHARGERS, 1, head)
    windows = list(range(first, first + s.days))
    n = len(evs)

    def per_window(value=0.0):
        return {w: [value] * n for w in windows}

    orders: dict[int, dict] = {}
    v2v = {key: {w: [[0] * HOURS for _ in range(n)] for w in windows} for key in ("bought", "sold")}
    cash = per_window()
    fills, fees = [], []
    reports = {w: [[None] * HOURS for _ in range(n)] for w in windows}
    for e in events:
        v = e["values"]
        if e["event"] == "OrderPlaced":
            orders[v[0]] = {"owner": index.get(v[1].lower()), "bid": v[2], "wh": v[3], "price": v[4], "interval": v[5]}
        elif e["event"] == "Fill":
            interval, bid, ask, wh, price = v
            buyer, seller = orders[bid]["owner"], orders[ask]["owner"]
            fills.append({"interval": interval, "buyer": buyer, "seller": seller, "wh": wh, "price": price})
            w, h = divmod(interval, HOURS)
            if w in v2v["bought"]:
                v2v["bought"][w][buyer][h] += wh
                v2v["sold"][w][seller][h] += wh
                cash[w][buyer] -= wh * price / 10_000
                cash[w][seller] += wh * price / 10_000
        elif e["event"] == "ChargerReport":
            ev, hour, charged, discharged, soc, departing = v
            w, h = divmod(hour, HOURS)
            if w in reports and ev.lower() in index:
                reports[w][index[ev.lower()]][h] = {"charged": charged, "discharged": discharged, "soc": soc,
                                                     "departing": departing, "block": e["block"]}
        elif e["event"] in ("FeeCharged", "FeePaid", "FeeConfiscated"):
            fees.append({"event": e["event"], "ev": index.get(v[0].lower()), "window": v[1], "block": e["block"],
                         "fee": v[3] if e["event"] == "FeeCharged" else v[2],
                         **({"profit": v[2], "mlag": index.get(v[4].lower())} if e["event"] == "FeeCharged" else {}),
                         **({"released": v[3]} if e["event"] == "FeePaid" else {}),
                         **({"held": v[3]} if e["event"] == "FeeConfiscated" else {})})

    days = []
    for w in windows:
        bought = {b: 0 for b in BANDS}
        sold = {b: 0 for b in BANDS}
        v2v_bought = {b: 0 for b in BANDS}
        v2v_sold = {b: 0 for b in BANDS}
        profit, grid_cash, scores, parked = [], [], [], []
        for k in range(n):
            grid, score, hours = 0.0, 0, []
            net_wh = 0
            for h in range(HOURS):
                r = reports[w][k][h]
                b = band(h)
                vb, vs = v2v["bought"][w][k][h], v2v["sold"][w][k][h]
                v2v_bought[b] += vb
                v2v_sold[b] += vs
                if r is None:
                    continue
                hours.append(h)
                bought[b] += r["charged"]
                sold[b] += r["discharged"]
                net_wh += r["charged"] - r["discharged"]
                grid -= max(r["charged"] - vb, 0) * retail[b] / 10_000
                grid += max(r["discharged"] - vs, 0) * buyback[b] / 10_000
                score += hour_score_int(delta[b], r["discharged"], r["charged"], r["soc"], r["departing"], 800_000,
                                        42_000)
            parked.append(hours)
            grid_cash.append(round(grid, 2))
            # arbitrage profit: cash plus the energy stored (or taken), valued at the off-peak tariff
            profit.append(round(cash[w][k] + grid + net_wh * retail["off"] / 10_000, 2))
            scores.append(score)
        drawn = draws.get(w + 1, {})
        charged = [f for f in fees if f["window"] == w and f["event"] == "FeeCharged"]
        days.append({
            "window": w, "mlag": _index_of(index, draws.get(w, {}).get("mlag")),
            "next_mlag": _index_of(index, drawn.get("mlag")),
            "bought_kwh": {b: round(bought[b] / 1000, 3) for b in BANDS},
            "sold_kwh": {b: round(sold[b] / 1000, 3) for b in BANDS},
            "v2v_bought_kwh": {b: round(v2v_bought[b] / 1000, 3) for b in BANDS},
            "v2v_sold_kwh": {b: round(v2v_sold[b] / 1000, 3) for b in BANDS},
            "scores": scores, "scores_on_chain": drawn.get("scores"),
            "v2v_cash_cents": [round(c, 2) for c in cash[w]], "grid_cash_cents": grid_cash, "profit_cents": profit,
            "v2v_price_profit_cents": [next((r["mdp_profit"] for r in records[k] if r["event"] == "commit"
                                             and r["round"] == w), 0.0) for k in range(n)],
            "parked": parked,
            "fees_charged": sum(f["fee"] for f in charged),
            "fees_paid": sum(f["fee"] for f in fees if f["window"] == w and f["event"] == "FeePaid"),
            "fees_confiscated": sum(f["fee"] for f in fees if f["window"] == w and f["event"] == "FeeConfiscated"),
            "fee_mlag": charged[0]["mlag"] if charged else None,
        })
    energy = {w: [[((reports[w][k][h] or {}).get("charged", 0) - (reports[w][k][h] or {}).get("discharged", 0)) / 1000
                   for h in range(HOURS)] for k in range(n)] for w in windows}
    return {"head": head, "evs": evs, "tariff": tariff, "days": days, "totals": _totals(days, reports, windows, n),
            "fills": fills, "fees": fees,
            "orders": len(orders), "energy_kwh": {str(w): e for w, e in energy.items()},
            "reports": sum(r is not None for w in windows for k in range(n) for r in reports[w][k]),
            "model": view["model"]}


def _totals(days: list[dict], reports: dict, windows: list[int], n: int) -> dict:
    """The run's energy by band, the thesis's shares, and how an EV-day's score follows its on-peak
    discharge (Pearson's r over EV-days)."""
    from consensus.rules.posoc import band

    bought = {b: round(sum(d["bought_kwh"][b] for d in days), 3) for b in BANDS}
    sold = {b: round(sum(d["sold_kwh"][b] for d in days), 3) for b in BANDS}
    peak = [sum((reports[w][k][h] or {}).get("discharged", 0) for h in range(HOURS) if band(h) == "on")
            for w in windows for k in range(n)]
    scores = [score for d in days for score in d["scores"]]
    r = float(np.corrcoef(peak, scores)[0, 1]) if len(set(peak)) > 1 and len(set(scores)) > 1 else None
    return {"bought_kwh": bought, "sold_kwh": sold,
            "sold_on_peak_share": round(sold["on"] / sum(sold.values()), 4) if sum(sold.values()) else None,
            "bought_outside_on_peak_share": round((bought["off"] + bought["mid"]) / sum(bought.values()), 4)
            if sum(bought.values()) else None,
            "score_vs_on_peak_discharge_r": None if r is None else round(r, 3),
            "fees_paid_cents": sum(d["fees_paid"] for d in days),
            "fees_confiscated_cents": sum(d["fees_confiscated"] for d in days)}


def _index_of(index: dict[str, int], address: str | None) -> int | None:
    return index.get(address.lower()) if address else None


# -- federated learning against the baseline ----------------------------------------------------------
def baseline(s: LiveSettings, first: int, model_blob: bytes, tariff: dict, final_global: bytes | None) -> dict:
    """The same days off chain: each EV alone (no federation) and a federated population, both
    from the live run's start; then every population's final model (the live one from the chain's
    last aggregate) played greedily on one set of test stays at the chain's tariff."""
    from consensus.rules import fedavg
    from market.economics import actor_critic as ac
    from market.economics.federated import evaluate, fedavg as float_fedavg, from_model, local_update, rollout
    from market.economics.v2v import Days

    prices = (tariff["off"], tariff["mid"], tariff["on"])
    start = from_model(fedavg.decode(model_blob))
    numbers = ev_numbers(s.evs)
    day_lists = []
    for number in numbers:
        rng = day_rng(s.seed, number)
        day_lists.append([draw_day(rng, prices) for _ in range(s.days)])
    out = {}
    finals = {}
    for name, federated in (("no_federation", False), ("federated_off_chain", True)):
        models = [dict(start) for _ in numbers]
        optimisers = [ac.Adam(ac.Hyper().learning_rate) for _ in numbers]
        rngs = [np.random.default_rng([s.seed, number, 1]) for number in numbers]
        profit = []
        for d in range(s.days):
            for k in range(len(numbers)):
                t = rollout(models[k], day_lists[k][d], rngs[k])
                profit.append(float(t.profit.sum()))
                models[k] = local_update(models[k], optimisers[k], t, ac.Hyper())
            if federated:
                shared = float_fedavg(models)
                models = [dict(shared) for _ in numbers]
        out[name] = {"mdp_profit_per_stay": round(float(np.mean(profit)), 3)}
        finals[name] = models
    rng = np.random.default_rng([s.seed, 99])
    test = [draw_day(rng, prices) for _ in range(200)]
    test_days = Days(np.concatenate([t.arrival for t in test]), np.concatenate([t.departure for t in test]),
                     np.concatenate([t.soc for t in test]), np.concatenate([t.prices for t in test]))
    finals["start"] = [start]
    if final_global is not None:
        finals["live_federated"] = [from_model(fedavg.decode(final_global))]
    out["greedy_test_profit_per_stay"] = {name: round(evaluate(models, test_days).profit, 3)
                                          for name, models in finals.items()}
    return out


# -- the test phase -----------------------------------------------------------------------------------
def _check(net: Localnet, s: LiveSettings, first: int, data: dict, records: list[list[dict]],
           exits: list[int | None], say) -> dict:
    rpc = net.rpc(net.live()[0], timeout=30)
    agreed = agreement(net, say)
    between = [f for f in data["fills"] if f["buyer"] is not None and f["seller"] is not None
               and f["buyer"] != f["seller"]]
    fills = {"fills": len(data["fills"]), "between_evs": len(between),
             "kwh": round(sum(f["wh"] for f in between) / 1000, 3), "ok": bool(between)}
    sent = sum(1 for rs in records for r in rs if r["event"] == "hour")
    failed_reports = [r for rs in records for r in rs if r["event"] == "failed" and r.get("kind") == "report"]
    reports = {"on_chain": data["reports"], "failed": len(failed_reports), "trading_hours_logged": sent,
               "ok": data["reports"] > 0 and not failed_reports}

    rounds = list(range(first, first + s.days))
    head = int(rpc("eth_blockNumber"), 16)
    txs = [tx for b in blocks(rpc, 1, head, full=True) for tx in b["transactions"]
           if (tx.get("to") or "").lower() == POSOC]
    commits = {r: 0 for r in rounds}
    for rs in records:
        for r in rs:
            if r["event"] == "commit" and r.get("tx") and r["round"] in commits:
                commits[r["round"]] += 1
    aggregates = {}
    for r in rounds:
        checks = []
        for i in net.live():
            try:
                checks.append(net.rpc(i, timeout=60)("grid_checkAggregate", r))
            except RpcError as error:
                checks.append({"error": str(error)})
        aggregates[r] = checks
    federation = {"commit_txs": sum(tx["input"].startswith("0x10") for tx in txs),
                  "aggregate_txs": sum(tx["input"].startswith("0x11") for tx in txs),
                  "commitments_sent": commits,
                  "checked": {r: [c.get("match") for c in checks] for r, checks in aggregates.items()},
                  "included": {r: len(checks[0].get("included", [])) if checks and "included" in checks[0] else 0
                               for r, checks in aggregates.items()},
                  "errors": {r: [c["error"] for c in checks if "error" in c][:1] for r, checks in aggregates.items()
                             if any("error" in c for c in checks)}}
    federation["ok"] = all(commits[r] > 0 and all(m is True for m in federation["checked"][r]) for r in rounds)
    paid = [f for f in data["fees"] if f["event"] == "FeePaid" and f["fee"] > 0]
    fees = {"charged": sum(1 for f in data["fees"] if f["event"] == "FeeCharged"), "paid": len(paid),
            "paid_cents": sum(f["fee"] for f in paid),
            "confiscated_cents": sum(f["fee"] for f in data["fees"] if f["event"] == "FeeConfiscated"),
            "ok": bool(paid)}
    checks = {"agreement": agreed, "fills": fills, "reports": reports, "federation": federation, "fees": fees}
    if s.selfish is not None:
        selfish = s.selfish if isinstance(s.selfish, int) else next(
            (k for k, rs in enumerate(records) if any(r.get("action") == "skipped (selfish)" for r in rs)), None)
        checks["selfish"] = _selfish(rpc, selfish, data, records[selfish]) if selfish is not None else {
            "ev": None, "ok": False, "reason": "no EV owed a fee within the run"}
    checks["agents"] = {"exit_codes": exits, "ok": all(code == 0 for code in exits)}
    return checks


def _selfish(rpc: Rpc, k: int, data: dict, records: list[dict]) -> dict:
    """The selfish EV: a confiscation, then a refused order (barred), then a settlement lifting the bar."""
    ev = data["evs"][k]
    mine = [f for f in data["fees"] if f["ev"] == k]
    confiscated = [f for f in mine if f["event"] == "FeeConfiscated"]
    result = {"ev": k, "address": ev, "skipped": next((r["window"] for r in records if r.get("action") ==
                                                       "skipped (selfish)"), None)}
    if not confiscated:
        result.update(ok=False, reason="no fee of this EV was confiscated (did it owe one within the run?)")
        return result
    c = confiscated[0]
    settled = [f for f in mine if f["event"] == "FeePaid" and f["window"] == c["window"] and f["block"] > c["block"]]
    refused = [r for r in records if r["event"] == "failed" and r.get("kind") == "order" and "barred" in r.get("reason", "")]

    def barred_at(block: int) -> bool | None:
        from vm.native.contract import encode_call

        try:
            reply = rpc("eth_call", {"to": V2V_MARKET, "data": "0x" + encode_call("barred(address)", (ev,)).hex()},
                        hex(block))
        except RpcError:
            return None
        return bool(int(reply, 16))

    result.update(window=c["window"], confiscated_block=c["block"], confiscated_cents=c["fee"],
                  barred_after_confiscation=barred_at(c["block"]),
                  refused_orders=[{"block": r["block"], "reason": r["reason"]} for r in refused][:5],
                  settled_block=settled[0]["block"] if settled else None,
                  barred_after_settling=barred_at(settled[0]["block"]) if settled else None)
    result["ok"] = (result["barred_after_confiscation"] is True and bool(refused) and bool(settled)
                    and all(c["block"] <= r["block"] <= settled[0]["block"] for r in refused)
                    and result["barred_after_settling"] is False)
    return result


# -- the figure ---------------------------------------------------------------------------------------
def plot(result: dict, path: str) -> None:
    """Fig. 4.8's three panels over the run: (a) when each EV was parked, (b) its hourly charge (+)
    and discharge (−), (c) its profit with the mining reward stacked on the mLAG(s)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days, n = result["collected"]["days"], len(result["collected"]["evs"])
    energy = result["collected"]["energy_kwh"]
    hours = len(days) * HOURS
    fig, axes = plt.subplots(3, 1, figsize=(10, 10))
    ax = axes[0]
    for k in range(n):
        for d, day in enumerate(days):
            for h in day["parked"][k]:
                ax.broken_barh([(d * HOURS + h, 1)], (k - 0.4, 0.8), color="tab:blue")
    ax.set_yticks(range(n), [f"EV{k}" for k in range(n)])
    ax.set_xlim(0, hours)
    ax.invert_yaxis()
    ax.set_title("(a) parked (one row per EV; the run's days side by side)")
    ax = axes[1]
    grid = np.array([[e for day in days for e in energy[str(day["window"])][k]] for k in range(n)])
    limit = max(float(np.abs(grid).max()), 1e-9)
    image = ax.imshow(grid, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest",
                      extent=(0, hours, n - 0.5, -0.5))
    fig.colorbar(image, ax=ax, label="kWh (+ charge, − discharge)", pad=0.01)
    ax.set_yticks(range(n), [f"EV{k}" for k in range(n)])
    ax.set_xlabel("hour of the run")
    ax.set_title("(b) hourly charge (+) and discharge (−)")
    ax = axes[2]
    at_v2v = np.array([sum(day["v2v_price_profit_cents"][k] for day in days) for k in range(n)])
    realised = np.array([sum(day["profit_cents"][k] for day in days) for k in range(n)])
    reward = np.zeros(n)
    for f in result["collected"]["fees"]:
        if f["event"] in ("FeePaid", "FeeConfiscated") and f["fee"]:
            mlag = next((c["mlag"] for c in result["collected"]["fees"] if c["event"] == "FeeCharged"
                         and c["ev"] == f["ev"] and c["window"] == f["window"]), None)
            if mlag is not None:
                reward[mlag] += f["fee"]
    fees_owed = np.array([sum(f["fee"] for f in result["collected"]["fees"] if f["event"] == "FeeCharged"
                              and f["ev"] == k) for k in range(n)])
    ax.bar(range(n), at_v2v - fees_owed, color="tab:green", label="profit at the V2V price, less fees (thesis)")
    ax.bar(range(n), reward, bottom=at_v2v - fees_owed, color="tab:orange", label="mining reward (mLAG)")
    ax.scatter(range(n), realised, color="black", marker="_", s=300, zorder=3,
               label="realised: V2V fills + the rest at the grid's tariff")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_xticks(range(n), [f"EV{k}" for k in range(n)])
    ax.set_ylabel("¢ over the run")
    ax.set_title("(c) profit, mining reward stacked")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the run ------------------------------------------------------------------------------------------
def _first_window(rpc: Rpc, s: LiveSettings) -> int:
    """The window the agents trade first: this one if they can be up before any EV arrives (hour 4),
    else the next."""
    ts = int(rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16)
    hour = ts // s.hour_seconds
    ready = (ts + GO_LEAD_SECONDS) // s.hour_seconds
    return hour // HOURS if ready // HOURS == hour // HOURS and ready % HOURS <= 3 else hour // HOURS + 1


def run_live(settings: LiveSettings, plot_path: str | None = None, say: Callable[[str], None] | None = None) -> dict:
    """Setup, start, load, collect, test, cleanup; returns the per-day figures and the checks."""
    from consensus.rules import fedavg

    settings.validate()
    s = settings
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    started = time.monotonic()
    with live_run(s.directory, "gridnode-posoc-live-") as (root, cleanup):
        net = posoc_localnet(root, s)
        net.setup()
        say(f"starting a {s.nodes}-node PoSOC localnet with {s.evs} EVs, {s.hour_seconds} s hours, in {root} …")
        cleanup.callback(net.stop)
        net.launch()
        model = start_model(s, say)  # while the nodes boot
        (root / "start-model.bin").write_bytes(model)
        grace = s.grace_hours or HOURS
        deadline = time.time() + 2 * 120 + ((s.days + 1) * HOURS + grace + 8) * s.hour_seconds + 30
        processes = _spawn_agents(net, s, root / "start-model.bin", deadline)
        cleanup.callback(_stop, processes)
        net.wait_ready()
        rpc = net.rpc(0)
        say(f"up after {time.monotonic() - started:.0f} s; {s.evs} EV agents starting"
            + (f"; EV{s.selfish} is selfish" if isinstance(s.selfish, int) else
               "; the first EV to owe a fee is selfish" if s.selfish else "")
            + (f"; from a model pretrained off chain for {s.pretrain} windows" if s.pretrain else
               "; from a fresh model"))
        first = _say_go(net, s, processes, say)
        say(f"agents ready after {time.monotonic() - started:.0f} s; they trade windows {first}..{first + s.days - 1} "
            f"(the head is in window {int(rpc('eth_getBlockByNumber', 'latest', False)['timestamp'], 16) // (HOURS * s.hour_seconds)})")
        draws = _follow(net, s, first, processes, deadline, say)
        _stop(processes)
        exits = [p.returncode for p in processes]
        records = _agent_records(root, s.evs)
        data = collect(net, s, first, draws, records)
        checks = _check(net, s, first, data, records, exits, say)
        final_global = None
        last = next((a for a in reversed(data["model"].get("aggregates", [])) if a and not a["voided"]), {})
        if last.get("hash"):
            with contextlib.suppress(RpcError):
                blob = net.rpc(net.live()[0], timeout=30)("grid_getModel", last["hash"])
                final_global = bytes.fromhex(blob[2:]) if blob else None
        compared = baseline(s, first, model, data["tariff"], final_global)
        live_profit = [r["mdp_profit"] for rs in records for r in rs if r["event"] == "commit"]
        compared["live_federated"] = {"mdp_profit_per_stay": round(float(np.mean(live_profit)), 3)
                                      if live_profit else None}
        if final_global is not None:
            compared["final_global_hash"] = "0x" + fedavg.model_hash(final_global).hex()
        result = {"settings": {"nodes": s.nodes, "evs": s.evs, "days": s.days, "hour_seconds": s.hour_seconds,
                               "seed": s.seed, "selfish": s.selfish, "pretrain": s.pretrain,
                               "grace_hours": grace},
                  "first_window": first, "seconds": round(time.monotonic() - started, 1),
                  "collected": data, "draws": {str(w): d for w, d in draws.items()}, "baseline": compared,
                  "checks": checks, "passed": all(c["ok"] for c in checks.values())}
        if plot_path:
            plot(result, plot_path)
        return result

