#!/usr/bin/env python3
"""Concurrent bidders on one English auction (paper 004): how many honest bids land.

For each load level (1, 5, 10, 25, 50, 100 concurrent bidders by default) it opens a fresh
auction through the AuctionFactory and runs the bidders in two modes:

- `same`: all at once on the same state. In each of `--bids-per-bidder` rounds every bidder
  reads the head, and all send at once a bid whose total tops that state's highest bid by a
  distinct number of increments (a fresh random ranking each round), so that each would top
  the one before it in ascending order; the round ends when every receipt is in.
- `reactive`: each bidder, `--bids-per-bidder` times, waits a random moment within
  `--window` seconds, reads the state and bids 1 to 5 increments (drawn) above the highest
  bid, then waits for its receipt.

Per mode × level it prints: bids sent, accepted (status 1), rejected by reason (status 0; only
`bid too low` is acceptable for an honest bidder), `missed`: of those, the bids that topped the
auction's highest bid before their block and tied with no other bid in it (put in by ascending
total each of them lands, so a producer with the bid ordering on misses none; the other `too
low` bids are ties or were made on a stale state), refused by the node at submission, lost
(the node took the bid, but no receipt came before `--timeout`), and submit→receipt
mean/p50/p95 over every receipt. A rejected bid's reason is the revert reason of `eth_call`
of the same call on the state its block left: the binding bid never falls within a block,
so a bid too low at its place is too low there too.

It uses only standard eth_* calls (JSON-RPC batches for receipts) and the auction's ABI,
signing with eth-account, so it runs against gridnode (native auction) and against any EVM
node with the Solidity auction of bench/solidity/ (deployed by this script when the node has
no `grid_contracts`). With no --rpc it starts its own devnets, one with the producer's bid
ordering on and one with `--no-bid-ordering`, and with `--anvil BIN` also an Anvil with 1 s
blocks.

Bidders are fresh keys of the test mnemonic (m/44'/60'/0'/0/100 on), funded from prosumers
#1..#19 and, on gridnode, registered as prosumers by the admin #0.

    python bench/auction.py                                 # two devnets, ordering on and off
    python bench/auction.py --rpc http://127.0.0.1:8545 [--rpc-off URL2] [--json]
    python bench/auction.py --anvil node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from eth_abi import decode, encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from nodes import Started, start_anvil, start_gridnode
from transfers import MNEMONIC, Rpc, percentile

HERE = Path(__file__).resolve().parent
ARTIFACT = HERE / "solidity" / "auction.json"
ELECOIN = 10**18
STEP = 10**12
"""The auctions' bid increment, in wei."""
FIRST_BIDDER = 100
"""Bidder i is the mnemonic's account 100 + i: no role, no funds until this script gives them."""
FUNDING = ELECOIN
"""What each bidder gets for bids and gas (bids are a few million STEPs, 1e-6 of this)."""
OWNER_INDEX = 1
BAR_P95 = 2.0


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


PLACE_BID = selector("placeBid()")
CREATE = selector("createAuction(uint256,uint256,uint256)")
AUCTION_CREATED = "0x" + keccak(text="AuctionCreated(address,address)").hex()
REGISTER = selector("register(address,uint8,string)")
ROLE_OF = selector("roleOf(address)")
REGISTRY = "0x6772696400000000000000000000000000000001"
PROSUMER = 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", help="node JSON-RPC URL (default: start a devnet with the bid ordering on)")
    parser.add_argument("--rpc-off", help="a second node to compare, with the bid ordering off "
                                          "(default: a devnet started with --no-bid-ordering when --rpc is not given)")
    parser.add_argument("--anvil", metavar="BIN", help="also start this Anvil binary (1 s blocks) and run the "
                                                       "Solidity auction of bench/solidity/ on it")
    parser.add_argument("--levels", default="1,5,10,25,50,100", help="concurrent bidders per level (default 1,5,10,25,50,100)")
    parser.add_argument("--modes", default="same,reactive", help="same, reactive or both (default same,reactive)")
    parser.add_argument("--bids-per-bidder", type=int, default=3, help="bids each bidder places per level (default 3)")
    parser.add_argument("--window", type=float, default=2.0,
                        help="reactive mode: seconds within which each bidder picks its moment (default 2)")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="seconds after a bid is sent before it counts as lost (default 30)")
    parser.add_argument("--seed", type=int, default=4, help="random seed of rankings and moments (default 4)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    args = parser.parse_args()
    try:
        args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--levels must be comma-separated numbers, got {args.levels!r}")
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not args.levels or min(args.levels) < 1:
        parser.error("--levels must be positive numbers")
    if any(m not in ("same", "reactive") for m in args.modes):
        parser.error("--modes takes same and/or reactive")
    if args.bids_per_bidder < 1:
        parser.error("--bids-per-bidder must be at least 1")
    return args


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def mnemonic_account(index: int):
    Account.enable_unaudited_hdwallet_features()
    return Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


# -- a chain seen through eth_* ---------------------------------------------------------------
@dataclass
class Wallet:
    account: object
    nonce: int = 0

    @property
    def address(self) -> str:
        return self.account.address


@dataclass
class Chain:
    """One node under test: its fee market, the auction factory, and a block follower that
    resolves each sent transaction's receipt."""
    label: str
    rpc: Rpc
    chain_id: int = 0
    tip: int = 0
    max_fee: int = 0
    factory: str = ""
    native: bool = True
    client: str = ""
    bid_gas: int = 0
    waiting: dict = field(default_factory=dict)
    """tx hash -> future of (receipt, seconds when seen)."""
    next_block: int = 0

    async def call(self, to: str, data: bytes, block="latest", sender: str | None = None, value: int = 0):
        params = {"to": to, "data": "0x" + data.hex()}
        if sender:
            params.update({"from": sender, "value": hex(value)})
        return bytes.fromhex((await self.rpc.call("eth_call", params, block))[2:])

    async def uint(self, to: str, getter: str) -> int:
        return decode(["uint256"], await self.call(to, selector(getter + "()")))[0]

    async def fees(self) -> None:
        self.tip = int(await self.rpc.call("eth_maxPriorityFeePerGas"), 16)
        base_fee = int((await self.rpc.call("eth_getBlockByNumber", "latest", False))["baseFeePerGas"], 16)
        self.max_fee = 4 * base_fee + self.tip

    def sign(self, wallet: Wallet, to: str | None, data: bytes = b"", value: int = 0, gas: int = 21_000) -> tuple[str, str]:
        tx = {"type": 2, "chainId": self.chain_id, "nonce": wallet.nonce, "value": value, "data": data, "gas": gas,
              "maxFeePerGas": self.max_fee, "maxPriorityFeePerGas": self.tip}
        if to is not None:
            tx["to"] = to
        raw = wallet.account.sign_transaction(tx)
        wallet.nonce += 1
        return "0x" + bytes(raw.hash).hex(), "0x" + bytes(raw.raw_transaction).hex()

    async def send(self, signed: tuple[str, str]) -> tuple[str, float, "asyncio.Future | str"]:
        """Submit; returns (hash, submit time, future of the receipt) or (hash, time, refusal reason)."""
        tx_hash, raw = signed
        future = asyncio.get_running_loop().create_future()
        self.waiting[tx_hash] = future
        sent = time.perf_counter()
        reply = (await self.rpc.batch([("eth_sendRawTransaction", [raw])]))[0]
        if "error" in reply:
            self.waiting.pop(tx_hash, None)
            return tx_hash, sent, reply["error"]["message"]
        return tx_hash, sent, future

    async def follow(self) -> None:
        """Follow new blocks for ever; resolve the futures of the transactions in each."""
        self.next_block = int(await self.rpc.call("eth_blockNumber"), 16) + 1
        while True:
            head = int(await self.rpc.call("eth_blockNumber"), 16)
            while self.next_block <= head:
                block = await self.rpc.call("eth_getBlockByNumber", hex(self.next_block), False)
                seen = time.perf_counter()
                mine = [h for h in block["transactions"] if h in self.waiting]
                for i in range(0, len(mine), 200):
                    part = mine[i:i + 200]
                    replies = await self.rpc.batch([("eth_getTransactionReceipt", [h]) for h in part])
                    for tx_hash, reply in zip(part, replies):
                        future = self.waiting.pop(tx_hash)
                        if not future.done():
                            future.set_result((reply.get("result"), seen))
                self.next_block += 1
            await asyncio.sleep(0.03)

    async def wait(self, future, deadline: float):
        try:
            return await asyncio.wait_for(future, max(0.0, deadline - time.perf_counter()))
        except asyncio.TimeoutError:
            return None

    async def confirm(self, signed: list[tuple[str, str]], what: str) -> list[dict]:
        """Send set-up transactions, wait for them all; exit with a readable error if one fails."""
        sent = await asyncio.gather(*(self.send(s) for s in signed))
        receipts = []
        for tx_hash, _, future in sent:
            if isinstance(future, str):
                raise SystemExit(f"{self.label}: {what} refused: {future}")
            outcome = await self.wait(future, time.perf_counter() + 60)
            if outcome is None or outcome[0]["status"] != "0x1":
                raise SystemExit(f"{self.label}: {what} failed ({tx_hash})")
            receipts.append(outcome[0])
        return receipts


async def connect(label: str, url: str, session: aiohttp.ClientSession) -> Chain:
    chain = Chain(label, Rpc(session, url))
    chain.client = await chain.rpc.call("web3_clientVersion")
    chain.label = label or chain.client.split("/")[0]
    chain.chain_id = int(await chain.rpc.call("eth_chainId"), 16)
    await chain.fees()
    reply = (await chain.rpc.batch([("grid_contracts", [])]))[0]
    if "result" in reply:
        chain.factory = to_checksum_address(reply["result"]["AuctionFactory"]["address"])
    else:
        chain.native = False
    return chain


async def set_up(chain: Chain, bidders: list[Wallet], funders: list[Wallet], admin: Wallet) -> None:
    """Deploy the Solidity factory where there is no native one; register (gridnode) and fund the bidders."""
    for wallet in [*funders, admin]:
        wallet.nonce = int(await chain.rpc.call("eth_getTransactionCount", wallet.address, "pending"), 16)
    if not chain.native:
        artifact = json.loads(ARTIFACT.read_text())["contracts"]["AuctionFactory"]
        (receipt,) = await chain.confirm([chain.sign(admin, None, bytes.fromhex(artifact["bytecode"][2:]),
                                                     gas=3_000_000)], "deploying the Solidity AuctionFactory")
        chain.factory = to_checksum_address(receipt["contractAddress"])
        progress(f"{chain.label}: Solidity AuctionFactory at {chain.factory}")
    if chain.native:
        unregistered = [w for w in bidders
                        if decode(["uint8"], await chain.call(REGISTRY, ROLE_OF + encode(["address"], [w.address])))[0] == 0]
        if unregistered:
            progress(f"{chain.label}: registering {len(unregistered)} bidders ...")
            await chain.confirm([chain.sign(admin, REGISTRY, REGISTER + encode(["address", "uint8", "string"],
                                                                                [w.address, PROSUMER, f"bidder {i}"]),
                                            gas=200_000) for i, w in enumerate(unregistered)], "registering a bidder")
    balances = [int(await chain.rpc.call("eth_getBalance", w.address, "latest"), 16) for w in funders]
    funders = [w for w, balance in zip(funders, balances) if balance >= 10 * len(bidders) * FUNDING // len(funders)]
    if not funders:
        raise SystemExit(f"{chain.label}: none of the test mnemonic's accounts #1..#19 has elecoins to fund bidders with")
    poor = [w for w in bidders if int(await chain.rpc.call("eth_getBalance", w.address, "latest"), 16) < FUNDING // 2]
    if poor:
        progress(f"{chain.label}: funding {len(poor)} bidders from {len(funders)} prosumers ...")
        await chain.confirm([chain.sign(funders[i % len(funders)], w.address, value=FUNDING) for i, w in enumerate(poor)],
                            "funding a bidder")
    for wallet in bidders:
        wallet.nonce = int(await chain.rpc.call("eth_getTransactionCount", wallet.address, "pending"), 16)


async def open_auctions(chain: Chain, owner: Wallet, count: int) -> list[str]:
    """`count` fresh auctions owned by `owner`, opened together, bidding open when this returns."""
    head = int(await chain.rpc.call("eth_blockNumber"), 16)
    start = head + 2
    data = CREATE + encode(["uint256"] * 3, [STEP, start, start + 100_000])
    receipts = await chain.confirm([chain.sign(owner, chain.factory, data, gas=3_000_000) for _ in range(count)],
                                   "opening an auction")
    auctions = []
    for receipt in receipts:
        (log,) = [log for log in receipt["logs"] if log["topics"][0] == AUCTION_CREATED]
        auctions.append(to_checksum_address("0x" + log["topics"][1][-40:]))
    while int(await chain.rpc.call("eth_blockNumber"), 16) < start - 1:
        await asyncio.sleep(0.1)
    return auctions


# -- the bidders ------------------------------------------------------------------------------
@dataclass
class Outcomes:
    sent: int = 0
    accepted: int = 0
    rejected: dict = field(default_factory=dict)
    refused: dict = field(default_factory=dict)
    lost: int = 0
    latencies: list = field(default_factory=list)
    bids: list = field(default_factory=list)
    """(block number, total, accepted) of every bid that got a receipt."""
    missed: int = 0
    """Rejected bids above the highest bid before their block and tied with no other bid in it."""

    def summary(self) -> dict:
        lat = self.latencies
        return {"sent": self.sent, "accepted": self.accepted, "rejected": dict(sorted(self.rejected.items())),
                "refused": dict(sorted(self.refused.items())), "lost": self.lost, "missed": self.missed,
                "latency_mean": statistics.fmean(lat) if lat else None,
                "latency_p50": percentile(lat, 50) if lat else None,
                "latency_p95": percentile(lat, 95) if lat else None}


async def revert_reason(chain: Chain, auction: str, wallet: Wallet, value: int, receipt: dict) -> str:
    if int(receipt["gasUsed"], 16) >= chain.bid_gas:
        return "out of gas"
    reply = (await chain.rpc.batch([("eth_call", [{"from": wallet.address, "to": auction, "value": hex(value),
                                                   "data": "0x" + PLACE_BID.hex(), "gas": hex(chain.bid_gas)},
                                                  receipt["blockNumber"]])]))[0]
    if "error" not in reply:
        return "reverted, no reason on replay"
    message = reply["error"].get("message", "")
    return message.split("execution reverted: ", 1)[-1].replace("auction: ", "")


async def place(chain: Chain, auction: str, wallet: Wallet, value: int, total: int, out: Outcomes,
                timeout: float) -> None:
    """Send one bid (`value` making the bidder's total `total`) and record what became of it."""
    out.sent += 1
    tx_hash, sent, future = await chain.send(chain.sign(wallet, auction, PLACE_BID, value, chain.bid_gas))
    if isinstance(future, str):
        wallet.nonce = int(await chain.rpc.call("eth_getTransactionCount", wallet.address, "pending"), 16)
        out.refused[future] = out.refused.get(future, 0) + 1
        return
    outcome = await chain.wait(future, sent + timeout)
    if outcome is None or outcome[0] is None:
        chain.waiting.pop(tx_hash, None)
        out.lost += 1
        return
    receipt, seen = outcome
    out.latencies.append(seen - sent)
    out.bids.append((int(receipt["blockNumber"], 16), total, receipt["status"] == "0x1"))
    if receipt["status"] == "0x1":
        out.accepted += 1
    else:
        reason = await revert_reason(chain, auction, wallet, value, receipt)
        out.rejected[reason] = out.rejected.get(reason, 0) + 1


async def funds(chain: Chain, auction: str, wallet: Wallet) -> int:
    return decode(["uint256"], await chain.call(auction, selector("fundsByBidder(address)")
                                                 + encode(["address"], [wallet.address])))[0]


async def run_same(chain: Chain, auction: str, bidders: list[Wallet], args, rng: random.Random) -> Outcomes:
    out = Outcomes()
    for _ in range(args.bids_per_bidder):
        highest = await chain.uint(auction, "highestBid")
        held = await asyncio.gather(*(funds(chain, auction, w) for w in bidders))
        ranks = list(range(1, len(bidders) + 1))
        rng.shuffle(ranks)
        # Every bidder's new total tops the state all of them read, each by a distinct number of
        # increments: in ascending order each tops the one before it.
        await asyncio.gather(*(place(chain, auction, w, highest + rank * STEP - have, highest + rank * STEP, out,
                                     args.timeout)
                               for w, rank, have in zip(bidders, ranks, held)))
    return out


async def run_reactive(chain: Chain, auction: str, bidders: list[Wallet], args, rng: random.Random) -> Outcomes:
    out = Outcomes()
    plans = [[(rng.uniform(0, args.window), rng.randint(1, 5)) for _ in range(args.bids_per_bidder)] for _ in bidders]

    async def bidder(wallet: Wallet, plan) -> None:
        for delay, steps in plan:
            await asyncio.sleep(delay)
            highest, have = await asyncio.gather(chain.uint(auction, "highestBid"), funds(chain, auction, wallet))
            value = max(highest + steps * STEP - have, STEP)
            await place(chain, auction, wallet, value, have + value, out, args.timeout)

    await asyncio.gather(*(bidder(w, plan) for w, plan in zip(bidders, plans)))
    return out


async def count_missed(chain: Chain, auction: str, out: Outcomes) -> int:
    """Rejected bids that topped the auction's highest bid before their block and shared their total
    with no other bid of that block. Put in by ascending total such a bid always lands (each bid
    before it is lower, so it is a new highest bid), so with the bid ordering on this is 0."""
    by_block: dict[int, list[tuple[int, bool]]] = {}
    for number, total, accepted in out.bids:
        by_block.setdefault(number, []).append((total, accepted))
    missed = 0
    for number, bids in sorted(by_block.items()):
        if all(accepted for _, accepted in bids):
            continue
        before = decode(["uint256"], await chain.call(auction, selector("highestBid()"), hex(number - 1)))[0]
        totals = [total for total, _ in bids]
        missed += sum(1 for total, accepted in bids if not accepted and total > before and totals.count(total) == 1)
    return missed


async def measure(chain: Chain, args) -> dict:
    count = max(args.levels)
    bidders = [Wallet(mnemonic_account(FIRST_BIDDER + i)) for i in range(count)]
    funders = [Wallet(mnemonic_account(i)) for i in range(1, 20)]
    admin, owner = Wallet(mnemonic_account(0)), funders[OWNER_INDEX - 1]
    follower = asyncio.create_task(chain.follow())
    try:
        await set_up(chain, bidders, funders, admin)
        probe, *auctions = await open_auctions(chain, owner, 1 + len(args.modes) * len(args.levels))
        estimate = int(await chain.rpc.call("eth_estimateGas", {"from": bidders[0].address, "to": probe,
                                                                "value": hex(STEP), "data": "0x" + PLACE_BID.hex()}), 16)
        chain.bid_gas = estimate * 3 // 2 + 25_000
        results = []
        for mode in args.modes:
            for level in args.levels:
                await chain.fees()
                auction = auctions.pop(0)
                progress(f"{chain.label}: {mode}, {level} bidders x {args.bids_per_bidder} bids ...")
                rng = random.Random(f"{args.seed}/{mode}/{level}")
                runner = run_same if mode == "same" else run_reactive
                out = await runner(chain, auction, bidders[:level], args, rng)
                out.missed = await count_missed(chain, auction, out)
                results.append({"mode": mode, "bidders": level, "auction": auction, **out.summary()})
        return {"label": chain.label, "node": chain.client, "rpc": chain.rpc.url,
                "contract": "native EnglishAuction" if chain.native else "Solidity EnglishAuction (bench/solidity)",
                "bid_gas_limit": chain.bid_gas, "results": results}
    finally:
        follower.cancel()


# -- report -----------------------------------------------------------------------------------
def fmt_seconds(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def print_tables(report: dict) -> None:
    for target in report["targets"]:
        print(f"\n{target['label']}: {target['node']} at {target['rpc']} — {target['contract']}, "
              f"bid gas limit {target['bid_gas_limit']:,}")
    modes = list(dict.fromkeys(r["mode"] for t in report["targets"] for r in t["results"]))
    for mode in modes:
        print(f"\nmode {mode} ({report['bids_per_bidder']} bids per bidder"
              + (f", window {report['window']} s" if mode == "reactive" else "") + ")")
        print(f"{'bidders':>7} {'target':<12} {'sent':>5} {'accepted':>8} {'too low':>7} {'missed':>6} "
              f"{'other rej.':>10} {'refused':>7} {'lost':>4} {'mean s':>7} {'p50 s':>6} {'p95 s':>6}")
        levels = sorted({r["bidders"] for t in report["targets"] for r in t["results"] if r["mode"] == mode})
        for level in levels:
            for target in report["targets"]:
                for r in target["results"]:
                    if r["mode"] != mode or r["bidders"] != level:
                        continue
                    low = r["rejected"].get("bid too low", 0)
                    other = sum(v for k, v in r["rejected"].items() if k != "bid too low")
                    print(f"{level:>7} {target['label']:<12} {r['sent']:>5} {r['accepted']:>8} {low:>7} {r['missed']:>6} "
                          f"{other:>10} "
                          f"{sum(r['refused'].values()):>7} {r['lost']:>4} {fmt_seconds(r['latency_mean']):>7} "
                          f"{fmt_seconds(r['latency_p50']):>6} {fmt_seconds(r['latency_p95']):>6}")
                    for reason, n in {**r["rejected"], **{f"refused: {k}": v for k, v in r["refused"].items()}}.items():
                        if reason != "bid too low":
                            print(f"{'':>20} {n} × {reason}")
    print()
    for line in report["bar"]:
        print(line)


def judge(report: dict, top: int) -> list[str]:
    """The issue's bar: 0 lost bids at the top level, p95 submit→receipt under 2 s."""
    lines = []
    for target in report["targets"]:
        for r in target["results"]:
            if r["bidders"] != top:
                continue
            ok = r["lost"] == 0 and r["latency_p95"] is not None and r["latency_p95"] < BAR_P95
            lines.append(f"bar at {top} bidders, {target['label']}, {r['mode']}: lost {r['lost']}, "
                         f"p95 {fmt_seconds(r['latency_p95'])} s -> {'met' if ok else 'NOT met'} "
                         f"({r['accepted']}/{r['sent']} accepted, {r['missed']} missed)")
    return lines


async def run(args) -> dict:
    targets: list[tuple[str, str]] = []
    started: list[Started] = []
    root = Path(tempfile.mkdtemp(prefix="gridnode-auction-bench-"))
    try:
        if args.rpc:
            targets.append(("ordering on" if args.rpc_off else "", args.rpc))
        else:
            progress(f"starting two devnets under {root} (bid ordering on, off) ...")
            for label, ordering in (("ordering on", True), ("ordering off", False)):
                started.append(start_gridnode(root, label.replace(" ", "-"), ordering))
                targets.append((label, started[-1].url))
        if args.rpc_off:
            targets.append(("ordering off", args.rpc_off))
        if args.anvil:
            progress("starting Anvil (1 s blocks) ...")
            started.append(start_anvil(root, args.anvil))
            targets.append(("anvil", started[-1].url))
        report = {"levels": args.levels, "modes": args.modes, "bids_per_bidder": args.bids_per_bidder,
                  "window": args.window, "step_wei": STEP, "targets": []}
        connector = aiohttp.TCPConnector(limit=max(args.levels) + 8)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            for label, url in targets:
                chain = await connect(label, url, session)
                report["targets"].append(await measure(chain, args))
        report["bar"] = judge(report, max(args.levels))
        return report
    finally:
        for node in started:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    args = parse_args()
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_tables(report)
    return 0 if all("NOT met" not in line for line in report["bar"]) else 1


if __name__ == "__main__":
    sys.exit(main())
