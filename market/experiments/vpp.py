"""`gridnode sim vpp`: paper 004's VPP day (§V, Tables 2–4, Fig. 5).

`run` plays the synthetic day of `market.economics.vpp` off chain: each hour's case, the running
scheme used for it, the lots its auctions sell and how Algorithm 1 clears them, summed per case
(energy traded, prices, auctions opened, bids sent and accepted), and the figure of the day's
profile (load, generation, gap, ESS-aided gap, like Fig. 5, with the cases shaded).

`run_live` plays the same hours on a localnet (`gridnode localnet`): the coordinator, the ESS,
the diesel generator and each household run as separate `python -m market.agents.vpp`
processes with their own keys, and the per-case figures are read back from the chain:
auctions = the AuctionFactory's auctions whose start block falls in that case's hours, accepted
bids = their `LogBid` events, prices = their binding bids; bids sent = the bids the agents
report having sent (accepted or refused); energy traded = the lots (Wh, off-chain bookkeeping,
as each opener reports them) of the auctions that found a winner."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from market.economics.vpp import (Case, HourPlan, RECOMMENDATIONS, SCHEME, clear_hour, plan_day, price_per_kwh)

START_MARGIN_BLOCKS = 10
"""Blocks between launching the agents and the first simulated hour: time for them to start."""
CASE_COLOURS = {Case.I: "#f4cccc", Case.II: "#fff2cc", Case.III: "#d9ead3", Case.IV: "#cfe2f3"}


def _hour_row(plan: HourPlan) -> dict:
    return {"hour": plan.hour, "generation_w": plan.generation_w, "load_w": plan.load_w, "gap_w": plan.gap_w,
            "backup_w": plan.backup_w, "aided_w": plan.aided_w, "stored_wh": plan.stored_wh,
            "case": plan.case.name, "scheme": plan.scheme.name, "sellers": dict(plan.sellers),
            "buyers": dict(plan.buyers), "diesel_wh": plan.diesel_wh, "grid_import_wh": plan.grid_import_wh,
            "grid_export_wh": plan.grid_export_wh}


def _prices(pairs: list[tuple[int, int]]) -> dict:
    """min / mean (energy-weighted) / max price in wei per kWh of (binding bid, Wh) sold lots."""
    sold = [(wei, wh) for wei, wh in pairs if wh]
    if not sold:
        return {"min": None, "mean": None, "max": None}
    per_kwh = [price_per_kwh(wei, wh) for wei, wh in sold]
    return {"min": min(per_kwh), "max": max(per_kwh),
            "mean": sum(wei for wei, _ in sold) * 1_000 // sum(wh for _, wh in sold)}


def _case_summary(plans: list[HourPlan]) -> dict:
    cases = {}
    for case in Case:
        mine = [p for p in plans if p.case is case]
        cases[case.name] = {
            "hours": [p.hour for p in mine], "scheme": SCHEME[case].name,
            "table4": {scheme.name: verdict for scheme, verdict in RECOMMENDATIONS[case].items()},
            "ess": case.ess_status, "demand": case.demand, "charging": case.charging,
            "energy_planned_wh": sum(sum(wh for _, wh in p.sellers) for p in mine),
            "diesel_wh": sum(p.diesel_wh for p in mine), "grid_import_wh": sum(p.grid_import_wh for p in mine),
            "grid_export_wh": sum(p.grid_export_wh for p in mine)}
    return cases


def run(households: int = 4, plot: str | None = None, hours: list[int] | None = None) -> dict:
    """The day off chain, for `households` households (and the given simulated hours, default
    all 24); writes the Fig. 5 figure to `plot` (a PNG path) when given."""
    plans = _select(plan_day(households), hours)
    rows = []
    for plan in plans:
        row = _hour_row(plan)
        row["lots"] = [{"seller": o.lot.seller, "opener": o.lot.opener, "wh": o.lot.wh, "winner": o.winner,
                        "price_wei": o.price, "bids": o.bids} for o in clear_hour(plan)]
        rows.append(row)
    cases = _case_summary(plans)
    for name, summary in cases.items():
        lots = [lot for row in rows if row["case"] == name for lot in row["lots"]]
        summary.update(auctions=len(lots), bids_sent=sum(lot["bids"] for lot in lots),
                       bids_accepted=sum(lot["bids"] for lot in lots),
                       energy_traded_wh=sum(lot["wh"] for lot in lots if lot["winner"]),
                       price_wei_per_kwh=_prices([(lot["price_wei"], lot["wh"]) for lot in lots if lot["winner"]]))
    result = {"mode": "off-chain", "households": households, "hours": rows, "cases": cases}
    if plot:
        write_figure(result, plot)
    return result


def _select(plans: list[HourPlan], hours: list[int] | None) -> list[HourPlan]:
    if hours is None:
        return plans
    bad = [h for h in hours if not 0 <= h < len(plans)]
    if bad or len(set(hours)) != len(hours):
        raise ValueError(f"hours are distinct whole hours 0..{len(plans) - 1}, got {hours}")
    by_hour = {p.hour: p for p in plans}
    return [by_hour[h] for h in hours]


def write_figure(result: dict, path: str) -> None:
    """Fig. 5: total load, total generation, the gap and the ESS-aided gap over the day (kW), each
    hour shaded by its case; below, the energy the auctions sold per hour (kWh)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    day = plan_day(result["households"])
    hours = [p.hour for p in day]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    for plan in day:
        top.axvspan(plan.hour - 0.5, plan.hour + 0.5, color=CASE_COLOURS[plan.case], lw=0)
        top.text(plan.hour, 880, plan.case.name, ha="center", fontsize=7)
    top.plot(hours, [p.load_w / 1_000 for p in day], color="green", label="total load TL")
    top.plot(hours, [p.generation_w / 1_000 for p in day], color="orange", label="total generation TG")
    top.plot(hours, [p.gap_w / 1_000 for p in day], color="gold", label="gap TG − TL")
    top.plot(hours, [p.aided_w / 1_000 for p in day], color="blue", label="ESS-aided gap TG + backup − TL")
    top.axhline(0, color="black", lw=0.6)
    top.set_ylabel("kW")
    top.set_ylim(-300, 920)
    top.set_title("VPP day (synthetic, Table 3's rows to the watt); cases I–IV shaded")
    top.legend(fontsize=7, loc="center left")
    traded = {row["hour"]: sum(lot["wh"] for lot in row["lots"] if lot["winner"]) / 1_000 for row in result["hours"]}
    planned = {row["hour"]: sum(row["sellers"].values()) / 1_000 for row in result["hours"]}
    shown = sorted(planned)
    bottom.bar([h - 0.2 for h in shown], [planned[h] for h in shown], width=0.4, label="on sale (plan)")
    bottom.bar([h + 0.2 for h in shown], [traded.get(h, 0) for h in shown], width=0.4,
               label="sold in auctions" + (" (on chain)" if result["mode"] == "live" else " (Algorithm 1)"))
    bottom.set_ylabel("kWh")
    bottom.set_xlabel("hour")
    bottom.set_xticks(range(0, 24, 2))
    bottom.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the live run ------------------------------------------------------------------------------

def _wait_for_localnet(directory: Path, count: int, timeout: float = 90) -> list[dict]:
    from web3 import Web3

    description = directory / "localnet.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if description.exists():
            nodes = json.loads(description.read_text())["nodes"]
            try:
                ready = True
                for node in nodes:
                    w3 = Web3(Web3.HTTPProvider(node["rpc"], request_kwargs={"timeout": 2}))
                    if w3.eth.block_number < 1 or (count > 1 and w3.net.peer_count < count - 1):
                        ready = False
                if ready:
                    return nodes
            except (OSError, ValueError):
                pass  # not listening yet
        time.sleep(0.5)
    raise RuntimeError(f"the localnet did not come up within {timeout:.0f} s (logs in {directory})")


def run_live(households: int = 4, nodes: int = 1, seconds_per_hour: int = 6, hours: list[int] | None = None,
             plot: str | None = None, progress: bool = False, logs: str | None = None,
             report=None) -> dict:
    """The simulated hours (default all 24) on a fresh `nodes`-node PoA localnet with 1-second
    blocks, `seconds_per_hour` blocks per simulated hour, one process per agent. Returns the
    per-case figures read from the chain (see the module's docstring). With `logs`, a new
    directory that keeps the localnet and each agent's event lines (ROLE.jsonl); otherwise
    they go to a temporary directory."""
    from genesis.devnet import dev_accounts
    from node.datadir import write_secret
    from web3 import Web3

    from market.agents.vpp import BLOCK_SECONDS, Clock, roles as agent_roles

    if seconds_per_hour < 6:
        raise ValueError("a simulated hour takes at least 6 blocks (auctions open, run 4 blocks and settle)")
    if nodes < 1:
        raise ValueError("--nodes is at least 1")
    say = report or (lambda text: print(text, file=sys.stderr, flush=True))
    plans = _select(plan_day(households), hours)
    roles = agent_roles(households)
    keys = dev_accounts(20)
    if logs is not None and Path(logs).exists() and any(Path(logs).iterdir()):
        raise ValueError(f"{logs} is not empty: the live run's logs go to a new directory")
    with contextlib.ExitStack() as cleanup:
        if logs is None:
            root = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="gridnode-vpp-")))
        else:
            root = Path(logs)
            root.mkdir(parents=True, exist_ok=True)
        localnet = subprocess.Popen([sys.executable, "-m", "cli.main", "localnet", "--nodes", str(nodes),
                                     "--dir", str(root / "net"), "--block-time", str(BLOCK_SECONDS)],
                                    stdout=subprocess.DEVNULL, stderr=open(root / "localnet.err", "w"),
                                    start_new_session=True)
        agents: dict[str, subprocess.Popen] = {}
        try:
            say(f"starting a {nodes}-node localnet in {root / 'net'} …")
            node_list = _wait_for_localnet(root / "net", nodes)
            rpcs = [n["rpc"] for n in node_list]
            w3 = Web3(Web3.HTTPProvider(rpcs[0], request_kwargs={"timeout": 30}))
            listed = w3.provider.make_request("grid_contracts", [])["result"]
            factory = w3.eth.contract(address=listed["AuctionFactory"]["address"],
                                      abi=listed["AuctionFactory"]["abi"])
            count_before = factory.functions.auctionCount().call()
            first_block = w3.eth.block_number + START_MARGIN_BLOCKS
            roles_file = root / "roles.json"
            roles_file.write_text(json.dumps({role: keys[a].address.to_checksum() for role, a in roles}))
            clock = Clock(first_block, seconds_per_hour, [p.hour for p in plans])
            say(f"{len(roles)} agents; simulated hours {clock.hours[0]:02d}..{clock.hours[-1]:02d} "
                f"({len(plans)} h) from block {first_block}, {seconds_per_hour} blocks per hour")
            for index, (role, account) in enumerate(roles):
                key_file = root / f"{role}.key"
                write_secret(key_file, "0x" + keys[account].private_key.hex() + "\n")
                command = [sys.executable, "-m", "market.agents.vpp", role, "--rpc", rpcs[index % len(rpcs)],
                           "--key", str(key_file), "--households", str(households), "--roles", str(roles_file),
                           "--first-block", str(first_block), "--blocks-per-hour", str(seconds_per_hour),
                           "--hours", ",".join(map(str, clock.hours)), "--json"]
                agents[role] = subprocess.Popen(command, stdout=open(root / f"{role}.jsonl", "w"),
                                                stderr=open(root / f"{role}.err", "w"),
                                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
            last_block = clock.end_block + 2  # the last auctions end; the agents exit once all is settled
            _follow(w3, agents, root, first_block, last_block, clock, progress, say)
            codes = _stop(agents)
            events = {role: _events(root / f"{role}.jsonl") for role in agents}
            at = w3.eth.block_number
            result = _chain_summary(w3, listed, factory, count_before, at, clock, plans, events)
            result.update(households=households, nodes=nodes, seconds_per_hour=seconds_per_hour,
                          agents={role: {"account": keys[a].address.to_checksum(),
                                         "exit": codes[role],
                                         "errors": [e["reason"] for e in events[role] if e["event"] == "error"]}
                                  for role, a in roles},
                          first_block=first_block, last_block=at)
        finally:
            _stop(agents)
            if localnet.poll() is None:
                os.killpg(localnet.pid, signal.SIGTERM)
                try:
                    localnet.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(localnet.pid, signal.SIGKILL)
                    localnet.wait()
    if plot:
        write_figure(result, plot)
    return result


def _follow(w3, agents, root: Path, first_block: int, last_block: int, clock, progress: bool, say) -> None:
    """Wait until the chain has passed `last_block` and every agent is done, showing progress."""
    from tqdm import tqdm

    total = last_block - first_block
    deadline = time.monotonic() + (last_block - w3.eth.block_number) * 3 + 60
    said = None
    with tqdm(total=total, disable=not progress, file=sys.stderr, desc="blocks") as bar:
        shown = 0
        while True:
            number = w3.eth.block_number
            now = min(max(number - first_block, 0), total)
            bar.update(now - shown)
            shown = now
            crashed = [r for r, p in agents.items() if p.poll() not in (None, 0)]
            if crashed:
                role = crashed[0]
                raise RuntimeError(f"agent {role} exited with {agents[role].returncode}:\n"
                                   + (root / f"{role}.err").read_text()[-3000:])
            if number >= last_block and all(p.poll() is not None for p in agents.values()):
                return
            if time.monotonic() > deadline:
                say("the agents did not finish in time; stopping them")
                return
            hour = clock.hour_at(number)
            if not progress and hour is not None and hour != said and clock.hours.index(hour) % 4 == 0:
                said = hour
                say(f"block {number}: simulated hour {hour:02d}")
            time.sleep(0.5)


def _stop(agents: dict[str, subprocess.Popen]) -> dict[str, int]:
    for process in agents.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    codes = {}
    for role, process in agents.items():
        try:
            codes[role] = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            codes[role] = process.wait()
    return codes


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _chain_summary(w3, listed, factory, count_before: int, at: int, clock, plans: list[HourPlan],
                   events: dict[str, list[dict]]) -> dict:
    """Per-case figures from the chain at block `at` (see the module docstring)."""
    from market.agents.auctions import GETTERS

    auction_abi = listed["EnglishAuction"]["abi"]
    count_after = factory.functions.auctionCount().call(block_identifier=at)
    lots = {e["auction"]: e for role in events for e in events[role] if e["event"] == "lot_opened"}
    sent: dict[str, int] = {}
    for role_events in events.values():
        for e in role_events:
            if e["event"] in ("bid", "rejected") and "auction" in e:
                sent[e["auction"]] = sent.get(e["auction"], 0) + 1
    by_hour = {p.hour: p for p in plans}
    auctions = []
    for index in range(count_before, count_after):
        address = factory.functions.auctionAt(index).call(block_identifier=at)
        contract = w3.eth.contract(address=address, abi=auction_abi)
        view = dict(zip(GETTERS, (getattr(contract.functions, g)().call(block_identifier=at) for g in GETTERS),
                        strict=True))
        logs = contract.events.LogBid().get_logs(from_block=clock.first_block, to_block=at)
        hour = clock.hour_at(view["startBlock"])
        lot = lots.get(address, {})
        auctions.append({"auction": address, "index": index, "hour": hour,
                         "case": by_hour[hour].case.name if hour in by_hour else None,
                         "owner": view["owner"], "seller": lot.get("seller"), "wh": lot.get("wh", 0),
                         "startBlock": view["startBlock"], "endBlock": view["endBlock"],
                         "winner": None if int(view["highestBidder"], 16) == 0 else view["highestBidder"],
                         "price_wei": view["highestBindingBid"], "bids_accepted": len(logs),
                         "bids_sent": sent.get(address, 0)})
    cases = _case_summary(plans)
    for name, summary in cases.items():
        mine = [a for a in auctions if a["case"] == name]
        sold = [a for a in mine if a["winner"]]
        summary.update(auctions=len(mine), bids_sent=sum(a["bids_sent"] for a in mine),
                       bids_accepted=sum(a["bids_accepted"] for a in mine),
                       energy_traded_wh=sum(a["wh"] for a in sold),
                       price_wei_per_kwh=_prices([(a["price_wei"], a["wh"]) for a in sold]))
    rows = []
    for plan in plans:
        row = _hour_row(plan)
        row["lots"] = [{"seller": a["seller"], "opener": a["owner"], "wh": a["wh"], "winner": a["winner"],
                        "price_wei": a["price_wei"], "bids": a["bids_accepted"], "auction": a["auction"]}
                       for a in auctions if a["hour"] == plan.hour]
        rows.append(row)
    return {"mode": "live", "hours": rows, "cases": cases, "auctions": auctions,
            "factory_auctions": count_after - count_before,
            "outside_hours": [a["auction"] for a in auctions if a["case"] is None]}
