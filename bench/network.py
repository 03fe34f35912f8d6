#!/usr/bin/env python3
"""How transfer throughput scales from one node to a network: for each size N (default 1, 2, 3,
4) a fresh `gridnode localnet --nodes N` on this machine (PoA, every node a signer, 1 s blocks,
libp2p between them), the same transfer benchmark as bench/compare.py sent to node 0 only, then
each node's RSS, who sealed the blocks that carried the load (the load is spread over all
signers when they take turns), and whether every node holds the same chain. Prints the table
with each size's ratio to one node, and writes it as JSON and a PNG bar chart.

    python bench/network.py --txs 10000                 # 1, 2, 3 and 4 nodes
    python bench/network.py --sizes 1,4 --txs 2000 --out /tmp/network
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.request import Request, urlopen

from compare import chart, measure, table
from nodes import rss_mib, start_localnet

READY_SECONDS = 90
"""Bound on a fresh localnet's nodes finding each other and making blocks."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,2,3,4",
                        help="network sizes to measure, comma-separated (default 1,2,3,4)")
    parser.add_argument("--txs", type=int, default=10_000, help="transfers per size (default 10000)")
    parser.add_argument("--senders", type=int, default=20, help="test accounts sending (default 20)")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight (default 32)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for all receipts (default 300)")
    parser.add_argument("--out", type=Path, default=Path("bench-out"),
                        help="directory for network.json and network.png (default ./bench-out)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    try:
        args.sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes: whole numbers separated by commas, such as 1,2,4")
    if not all(1 <= s <= 8 for s in args.sizes):
        parser.error("--sizes: each from 1 to 8 nodes")
    return args


def rpc(url: str, method: str, *params):
    request = Request(url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode(),
                      {"Content-Type": "application/json"})
    with urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']['message']}")
    return reply["result"]


def wait_ready(members: list[dict]) -> None:
    """Every node connected to every other and past block 1."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        try:
            if all(int(rpc(m["rpc"], "net_peerCount"), 16) >= len(members) - 1 and
                   int(rpc(m["rpc"], "eth_blockNumber"), 16) >= 1 for m in members):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the {len(members)}-node localnet did not connect and make blocks in {READY_SECONDS} s")


def spread_and_agreement(members: list[dict], first: int) -> dict:
    """Who sealed blocks first+1.. (by node 0's chain), and whether every node has node 0's block
    at the lowest head among them."""
    url = members[0]["rpc"]
    head = int(rpc(url, "eth_blockNumber"), 16)
    sealers: Counter = Counter()
    carried: Counter = Counter()
    for number in range(first + 1, head + 1):
        block = rpc(url, "eth_getBlockByNumber", hex(number), False)
        sealers[block["miner"]] += 1
        carried[block["miner"]] += len(block["transactions"])
    lowest = min(int(rpc(m["rpc"], "eth_blockNumber"), 16) for m in members)
    hashes = {rpc(m["rpc"], "eth_getBlockByNumber", hex(lowest), False)["hash"] for m in members}
    return {"blocks_by_sealer": dict(sealers), "transactions_by_sealer": dict(carried),
            "sealers": len(sealers), "agree_at": lowest, "agree": len(hashes) == 1}


def main() -> int:
    args = parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="gridnode-network-") as tmp:
        for size in args.sizes:
            net, members = start_localnet(Path(tmp), size)
            try:
                wait_ready(members)
                first = int(rpc(net.url, "eth_blockNumber"), 16)
                row = measure(net, args, pid=members[0]["pid"])
                row.update(spread_and_agreement(members, first))
                row["nodes"] = size
                row["rss_each_mib"] = [rss_mib(m["pid"]) for m in members]
                row["rss_mib"] = max(r for r in row["rss_each_mib"] if r is not None)
                rows.append(row)
            finally:
                net.stop()
            print(f"  {row['label']}: {row['confirmed_tps']:,.0f} tx/s confirmed, p95 {row['p95']:.0f} ms, "
                  f"{row['lost']} lost; blocks sealed by {row['sealers']} of {size}; "
                  f"chains {'agree' if row['agree'] else 'DIFFER'} at block {row['agree_at']}", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"rows": rows, "parameters": {"txs": args.txs, "senders": args.senders, "concurrency": args.concurrency,
                                           "block_time": 1, "gas_limit": 60_000_000, "sent_to": "node 0"}}
    (args.out / "network.json").write_text(json.dumps(report, indent=2))
    reference = rows[0]["label"]
    chart(rows, args.out / "network.png", reference)
    if args.json:
        print(json.dumps(report))
    else:
        print(table(rows, reference))
        for row in rows:
            by_sealer = sorted(row["transactions_by_sealer"].values(), reverse=True)
            print(f"{row['label']}: transactions by sealer {by_sealer}")
        print(f"written: {args.out / 'network.json'}, {args.out / 'network.png'}")
    return 0 if all(r["lost"] == 0 and not r["failures"] and r["agree"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
