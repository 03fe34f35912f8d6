#!/usr/bin/env python3
"""ERC-20 `transfer` throughput beside native transfers, on the same node in the same run.

Runs bench/transfers.py's measurement for N native elecoin transfers and for N ERC-20
`transfer(address,uint256)` calls of the fiat token, in `--rounds` rounds that alternate the
order (native, ERC-20, ERC-20, native, …), each phase pre-signed as EIP-1559
transactions from the test mnemonic's accounts (funded with elecoins and fiat on gridnode's
devnet), submitted concurrently with eth_sendRawTransaction and confirmed by following new
blocks and reading every receipt. It prints both kinds side by side (submitted and confirmed
tx/s over all rounds and per round, submit→receipt latency, failures) and the ERC-20 rate as a
share of the native one; the issue's bar is 80 %. Only standard eth_* calls carry the load;
the token's address comes from `--token` or, by default, from gridnode's `grid_contracts`.

Then it times the DoubleAuction's clearing of 1,000 and 10,000 orders (`--clearing-orders`;
bench/clearing.py's in-process measurement of the end-of-block hook, crossed books, distinct
owners and the 19 devnet prosumers), beside the block time it has to fit in.

    python bench/market.py --rpc http://127.0.0.1:8545 --txs 5000 [--clearing-orders 1000 10000] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

import aiohttp
from eth_abi import encode
from eth_account import Account
from eth_utils import keccak, to_checksum_address
import clearing
from transfers import MNEMONIC, Rpc, measure, percentile, rss_mib

TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]
BAR = 0.80
"""The issue's bar: ERC-20 transfers at no less than 80 % of the native-transfer rate."""
GAS_HEADROOM = 1.25
"""Gas limit of every token transfer: the estimate for a first transfer to a fresh account, plus this margin."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="node JSON-RPC URL")
    parser.add_argument("--txs", type=int, default=5_000, help="transactions per phase (default 5000)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of both phases, alternating their order (native, ERC-20, ERC-20, native, ...) "
                             "so that a drift in the machine's load cancels (default 2)")
    parser.add_argument("--senders", type=int, default=20, help="mnemonic accounts used as senders (default 20)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--batch", type=int, default=1,
                        help="transactions per JSON-RPC batch request (default 1: one HTTP request each)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for a phase's receipts (default 180)")
    parser.add_argument("--token", help="ERC-20 contract address (default: gridnode's FiatToken from grid_contracts)")
    parser.add_argument("--pid", type=int, help="node process id, to print its resident memory")
    parser.add_argument("--clearing-orders", type=int, nargs="*", default=[1_000, 10_000], metavar="N",
                        help="double-auction book sizes to time the clearing of (default 1000 10000; none to skip)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    return parser.parse_args()


def senders(count: int) -> list:
    Account.enable_unaudited_hdwallet_features()
    return [Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(count)]


def recipient(phase: int, i: int) -> str:
    """A fresh account per transaction (as bench/transfers.py), distinct between the phases."""
    return to_checksum_address((0xB0B0000000000000000000000000000000000000 + (phase << 32) + i).to_bytes(20, "big"))


async def presign(rpc: Rpc, accounts: list, count: int, first: int, build) -> list[tuple[str, str]]:
    """`count` signed transactions round-robin over `accounts`; build(i) gives to/value/data/gas of
    the i-th, for i from `first` on (so every round pays fresh recipients)."""
    chain_id = int(await rpc.call("eth_chainId"), 16)
    tip = int(await rpc.call("eth_maxPriorityFeePerGas"), 16)
    base_fee = int((await rpc.call("eth_getBlockByNumber", "latest", False))["baseFeePerGas"], 16)
    nonces = [int(await rpc.call("eth_getTransactionCount", a.address, "pending"), 16) for a in accounts]
    signed = []
    for i in range(count):
        index = i % len(accounts)
        tx = {"type": 2, "chainId": chain_id, "nonce": nonces[index], "maxFeePerGas": 4 * base_fee + tip,
              "maxPriorityFeePerGas": tip, **build(first + i)}
        nonces[index] += 1
        raw = accounts[index].sign_transaction(tx)
        signed.append(("0x" + bytes(raw.hash).hex(), "0x" + bytes(raw.raw_transaction).hex()))
    return signed


def combine(phases: list[dict]) -> dict:
    """One kind's phases together: rates over their summed counts and times, latency over all."""
    latencies = [x for phase in phases for x in phase["latencies"]]
    failures: dict[str, int] = {}
    for phase in phases:
        for reason, count in phase["failures"].items():
            failures[reason] = failures.get(reason, 0) + count
    transactions, confirmed = sum(p["transactions"] for p in phases), sum(p["confirmed"] for p in phases)
    seconds = sum(p["seconds"] for p in phases)
    return {"transactions": transactions, "submitted_tps": transactions / sum(p["submit_seconds"] for p in phases),
            "confirmed": confirmed, "seconds": seconds, "confirmed_tps": confirmed / seconds,
            "rounds_tps": [p["confirmed"] / p["seconds"] for p in phases],
            "latency_p50": percentile(latencies, 50) if latencies else None,
            "latency_p95": percentile(latencies, 95) if latencies else None,
            "latency_max": max(latencies) if latencies else None, "failures": failures}


async def token_address(rpc: Rpc, args: argparse.Namespace) -> str:
    if args.token:
        return to_checksum_address(args.token)
    contracts = await rpc.call("grid_contracts")
    return to_checksum_address(contracts["FiatToken"]["address"])


def transfer_data(to: str, amount: int) -> str:
    return "0x" + (TRANSFER_SELECTOR + encode(["address", "uint256"], [to, amount])).hex()


async def run(args: argparse.Namespace) -> dict:
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        rpc = Rpc(session, args.rpc)
        client = await rpc.call("web3_clientVersion")
        accounts = senders(args.senders)
        token = await token_address(rpc, args)
        estimate = int(await rpc.call("eth_estimateGas", {"from": accounts[0].address, "to": token,
                                                          "data": transfer_data(recipient(2, 0), 1)}), 16)
        token_gas = int(estimate * GAS_HEADROOM)
        phases = {
            "native": lambda i: {"to": recipient(0, i), "value": 1, "gas": 21_000},
            "erc20": lambda i: {"to": token, "value": 0, "gas": token_gas, "data": transfer_data(recipient(1, i), 1)},
        }
        measured: dict[str, list[dict]] = {name: [] for name in phases}
        for round_ in range(args.rounds):
            order = list(phases) if round_ % 2 == 0 else list(reversed(phases))  # ABBA: load drift cancels
            for name in order:
                print(f"round {round_ + 1}, {name}: pre-signing {args.txs} transactions from {len(accounts)} "
                      "senders ...", file=sys.stderr)
                signed = await presign(rpc, accounts, args.txs, round_ * args.txs, phases[name])
                print(f"round {round_ + 1}, {name}: sending ...", file=sys.stderr)
                measured[name].append(await measure(rpc, signed, args))
        results = {name: combine(runs) for name, runs in measured.items()}
        ratio = results["erc20"]["confirmed_tps"] / results["native"]["confirmed_tps"]
        return {"node": client, "rpc": args.rpc, "token": token, "token_gas_estimate": estimate,
                "senders": len(accounts), "concurrency": args.concurrency, "batch": args.batch,
                "rounds": args.rounds, **results,
                "erc20_over_native": ratio, "bar": BAR, "meets_bar": ratio >= BAR,
                "node_rss_mib": rss_mib(args.pid) if args.pid else None}


def print_table(result: dict) -> None:
    native, erc20 = result["native"], result["erc20"]
    print(f"node: {result['node']} at {result['rpc']}; token {result['token']} "
          f"(transfer gas estimate {result['token_gas_estimate']:,})")
    print(f"{result['senders']} senders, concurrency {result['concurrency']}, batch {result['batch']}, "
          f"{result['rounds']} rounds")
    print(f"{'':<22}{'native transfer':>18}{'ERC-20 transfer':>18}")
    rows = [("transactions", "{:,}", "transactions"), ("submitted tx/s", "{:,.0f}", "submitted_tps"),
            ("confirmed", "{:,}", "confirmed"), ("seconds", "{:.2f}", "seconds"),
            ("confirmed tx/s", "{:,.0f}", "confirmed_tps"), ("latency p50 s", "{:.3f}", "latency_p50"),
            ("latency p95 s", "{:.3f}", "latency_p95"), ("latency max s", "{:.3f}", "latency_max")]
    for label, form, key in rows:
        cells = [form.format(phase[key]) if phase[key] is not None else "-" for phase in (native, erc20)]
        print(f"{label:<22}{cells[0]:>18}{cells[1]:>18}")
    rounds = [" / ".join(f"{tps:,.0f}" for tps in phase["rounds_tps"]) for phase in (native, erc20)]
    print(f"{'tx/s in each round':<22}{rounds[0]:>18}{rounds[1]:>18}")
    print(f"{'failures':<22}{sum(native['failures'].values()):>18}{sum(erc20['failures'].values()):>18}")
    for name, phase in (("native", native), ("erc20", erc20)):
        for reason, count in phase["failures"].items():
            print(f"  {name} {reason}: {count}")
    verdict = "meets" if result["meets_bar"] else "BELOW"
    print(f"ERC-20 / native confirmed rate: {result['erc20_over_native']:.1%} ({verdict} the {result['bar']:.0%} bar)")
    if result["node_rss_mib"] is not None:
        print(f"node RSS: {result['node_rss_mib']:.0f} MiB")


def main() -> int:
    args = parse_args()
    result = asyncio.run(run(args))
    result["clearing"] = clearing.run_all(args.clearing_orders, ["crossed"], ["distinct", "few"])
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print_table(result)
        if result["clearing"]:
            print()
            clearing.print_rows(result["clearing"])
    complete = all(not result[p]["failures"] and result[p]["confirmed"] == args.txs * args.rounds
                   for p in ("native", "erc20"))
    return 0 if complete and result["meets_bar"] and clearing.succeeded(result["clearing"]) else 1


if __name__ == "__main__":
    sys.exit(main())
