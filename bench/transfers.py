#!/usr/bin/env python3
"""Transfer throughput and latency against any Ethereum JSON-RPC node.

Pre-signs N EIP-1559 transfers from many senders (the standard test mnemonic's
accounts, funded on gridnode's devnet, Hardhat, Anvil and geth --dev alike),
submits them concurrently with eth_sendRawTransaction, watches new blocks with
eth_blockNumber / eth_getBlockByNumber, checks every receipt with
eth_getTransactionReceipt, and prints:
submitted tx/s, confirmed tx/s, submit→receipt latency p50/p95/max, failures,
and the node's RSS when --pid is given. Only standard eth_* calls are used
(JSON-RPC batches where --batch > 1), so it runs unchanged against other nodes.

    python bench/transfers.py --rpc http://127.0.0.1:8545 --txs 10000
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time

import aiohttp
from eth_account import Account
from eth_utils import to_checksum_address
from nodes import rss_mib

MNEMONIC = "test test test test test test test test test test test junk"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", default="http://127.0.0.1:8545", help="node JSON-RPC URL")
    parser.add_argument("--txs", type=int, default=10_000, help="transfers to send (default 10000)")
    parser.add_argument("--senders", type=int, default=20, help="mnemonic accounts used as senders (default 20)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--batch", type=int, default=1,
                        help="transactions per JSON-RPC batch request (default 1: one HTTP request each)")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for all receipts (default 120)")
    parser.add_argument("--pid", type=int, help="node process id, to print its resident memory")
    parser.add_argument("--json", action="store_true", help="print one JSON object (for bench/compare.py) instead")
    return parser.parse_args()


class Rpc:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url, self.ids = session, url, itertools.count(1)

    async def batch(self, calls: list[tuple[str, list]]) -> list[dict]:
        payload = [{"jsonrpc": "2.0", "id": next(self.ids), "method": m, "params": p} for m, p in calls]
        async with self.session.post(self.url, json=payload) as response:
            replies = await response.json(content_type=None)
        by_id = {reply["id"]: reply for reply in replies}
        return [by_id[item["id"]] for item in payload]

    async def call(self, method: str, *params):
        reply = (await self.batch([(method, list(params))]))[0]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']['message']}")
        return reply["result"]


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


async def presign(rpc: Rpc, args) -> list[tuple[str, str]]:
    Account.enable_unaudited_hdwallet_features()
    senders = [Account.from_mnemonic(MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}") for i in range(args.senders)]
    chain_id = int(await rpc.call("eth_chainId"), 16)
    tip = int(await rpc.call("eth_maxPriorityFeePerGas"), 16)
    base_fee = int((await rpc.call("eth_getBlockByNumber", "latest", False))["baseFeePerGas"], 16)
    nonces = [int(await rpc.call("eth_getTransactionCount", s.address, "pending"), 16) for s in senders]
    max_fee = 4 * base_fee + tip  # headroom for base-fee rises while the load runs
    signed = []
    for i in range(args.txs):
        index = i % len(senders)
        sender = senders[index]
        recipient = to_checksum_address((0xB0B0000000000000000000000000000000000000 + i).to_bytes(20, "big"))
        tx = {"type": 2, "chainId": chain_id, "nonce": nonces[index], "to": recipient, "value": 1,
              "gas": 21_000, "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip}
        nonces[index] += 1
        raw = sender.sign_transaction(tx)
        signed.append(("0x" + bytes(raw.hash).hex(), "0x" + bytes(raw.raw_transaction).hex()))
        if (i + 1) % 2000 == 0:
            print(f"  signed {i + 1}/{args.txs}", file=sys.stderr)
    return signed


async def main() -> int:
    args = parse_args()
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        rpc = Rpc(session, args.rpc)
        client = await rpc.call('web3_clientVersion')
        print(f"node: {client} at {args.rpc}", file=sys.stderr if args.json else sys.stdout)
        print(f"pre-signing {args.txs} transfers from {args.senders} senders ...", file=sys.stderr)
        signed = await presign(rpc, args)
        result = await measure(rpc, signed, args)
        latencies = result["latencies"]
        submit_seconds, wall, confirmed, failures = (result["submit_seconds"], result["seconds"],
                                                     result["confirmed"], result["failures"])
        if args.json:
            print(json.dumps({"client": client, "transactions": args.txs, "senders": args.senders,
                              "concurrency": args.concurrency, "batch": args.batch,
                              "submit_tps": args.txs / submit_seconds, "confirmed": confirmed,
                              "confirmed_tps": confirmed / wall if confirmed else 0.0,
                              "seconds": wall if confirmed else None,
                              "p50": percentile(latencies, 50) if latencies else None,
                              "p95": percentile(latencies, 95) if latencies else None,
                              "max": max(latencies) if latencies else None, "failures": failures,
                              "rss_mib": rss_mib(args.pid) if args.pid else None}))
            return 0 if not failures and confirmed == args.txs else 1
        print(f"transactions:      {args.txs} ({args.senders} senders, concurrency {args.concurrency}, "
              f"batch {args.batch})")
        print(f"submitted:         {args.txs / submit_seconds:,.0f} tx/s ({submit_seconds:.2f} s)")
        print(f"confirmed:         {confirmed} in {wall:.2f} s = {confirmed / wall:,.0f} tx/s")
        if latencies:
            print(f"submit→receipt:    p50 {percentile(latencies, 50):.3f} s   p95 {percentile(latencies, 95):.3f} s"
                  f"   max {max(latencies):.3f} s")
        print(f"failures:          {sum(failures.values())}" + "".join(f"\n  {k}: {v}" for k, v in failures.items()))
        if args.pid:
            print(f"node RSS:          {rss_mib(args.pid):.0f} MiB")
        return 0 if not failures and confirmed == args.txs else 1


async def measure(rpc: Rpc, signed: list[tuple[str, str]], args) -> dict:
    """Submit `signed` with `args.concurrency` requests in flight (`args.batch` per request),
    follow blocks until each is confirmed or `args.timeout` passes, and time it all from the
    first submission to the last confirmed receipt."""
    submitted_at: dict[str, float] = {}
    confirmed_at: dict[str, float] = {}
    failures: dict[str, int] = {}
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(0, len(signed), args.batch):
        queue.put_nowait(signed[i:i + args.batch])

    async def submitter() -> None:
        while not queue.empty():
            chunk = queue.get_nowait()
            started = time.perf_counter()
            for tx_hash, _ in chunk:
                submitted_at[tx_hash] = started
            replies = await rpc.batch([("eth_sendRawTransaction", [raw]) for _, raw in chunk])
            for (tx_hash, _), reply in zip(chunk, replies):
                if "error" in reply:
                    reason = f"rejected: {reply['error']['message'].split(':')[0]}"
                    failures[reason] = failures.get(reason, 0) + 1
                    submitted_at.pop(tx_hash, None)

    start_block = int(await rpc.call("eth_blockNumber"), 16)
    t0 = time.perf_counter()
    watcher = asyncio.create_task(watch(rpc, start_block, submitted_at, confirmed_at, failures,
                                        len(signed), args.timeout))
    await asyncio.gather(*(submitter() for _ in range(args.concurrency)))
    submit_seconds = time.perf_counter() - t0
    await watcher
    wall = (max(confirmed_at.values()) - t0) if confirmed_at else float("nan")
    return {"transactions": len(signed), "submit_seconds": submit_seconds, "confirmed": len(confirmed_at),
            "seconds": wall, "latencies": [confirmed_at[h] - submitted_at[h] for h in confirmed_at],
            "failures": failures}


async def watch(rpc: Rpc, start_block: int, submitted_at: dict, confirmed_at: dict, failures: dict,
                expected: int, timeout: float) -> None:
    """Follow new blocks; a transfer is confirmed when its receipt is readable with status 1."""
    next_block = start_block + 1
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline and len(confirmed_at) + sum(failures.values()) < expected:
        head = int(await rpc.call("eth_blockNumber"), 16)
        while next_block <= head:
            block = await rpc.call("eth_getBlockByNumber", hex(next_block), False)
            seen = time.perf_counter()
            hashes = [h for h in block["transactions"] if h in submitted_at]
            for i in range(0, len(hashes), 500):
                part = hashes[i:i + 500]
                receipts = await rpc.batch([("eth_getTransactionReceipt", [h]) for h in part])
                for tx_hash, reply in zip(part, receipts):
                    receipt = reply.get("result")
                    if receipt and receipt["status"] == "0x1":
                        confirmed_at[tx_hash] = seen
                    else:
                        failures["receipt missing or status 0"] = failures.get("receipt missing or status 0", 0) + 1
            next_block += 1
        await asyncio.sleep(0.02)
    missing = expected - len(confirmed_at) - sum(failures.values())
    if missing > 0:
        failures["not confirmed before timeout"] = missing


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
