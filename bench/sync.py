#!/usr/bin/env python3
"""How fast a new node syncs a chain from a peer: blocks/s and transactions/s, for blocks of a
few sizes.

For each size, a chain of `--blocks` blocks of T transfers is built in process (bench/scale.py's
`Run`: the producer's `build_block` and the validator's import) in a data dir that a follower
`gridnode start` then serves (no signer key: it only serves); a second, empty node with the same
genesis starts with the first as its bootnode, and the script times it from its first RPC answer
to its head reaching the served head (eth_blockNumber polled every 20 ms). The syncing node's
own log line ("synced N blocks … blocks/s") is reported beside it.

    python bench/sync.py                         # 2,000 blocks each of 0, 100 and 1,000 transfers
    python bench/sync.py --blocks 5000 --txs 0,50 --json
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodes import Started, free_port, rss_mib  # noqa: E402
from scale import Run  # noqa: E402

from market.agents.meter_driver import Rpc, RpcError  # noqa: E402
from node.datadir import DataDir  # noqa: E402
from node.p2p.identity import load_or_create_identity  # noqa: E402
from node.service import open_chain  # noqa: E402

FUNDED = 10_000
"""Accounts the genesis funds besides the devnet's: the transfers go to random ones of them."""
SYNC_SECONDS = 600
"""The most one size may take to sync before the script gives up on it."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=2_000, help="blocks in each chain (default 2000)")
    parser.add_argument("--txs", default="0,100,1000", help="transfers per block, one chain each (default 0,100,1000)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    args.txs = [int(t) for t in args.txs.split(",")]
    if args.blocks < 1 or any(t < 0 or t * 21_000 > 60_000_000 for t in args.txs):
        parser.error("--blocks must be positive and --txs each 0..2857 (a 60M-gas block)")
    return args


def node(datadir: DataDir, label: str, bootnode: str | None, log: Path) -> tuple[Started, str]:
    """`gridnode start` on a prepared data dir, on free ports; its p2p multiaddr."""
    p2p = free_port()
    command = [sys.executable, "-m", "cli.main", "start", "--datadir", str(datadir.root), "--rpc-port", "0",
               "--listen", f"/ip4/127.0.0.1/tcp/{p2p}"] + (["--bootnode", bootnode] if bootnode else [])
    started = Started(label, command, r"Started JSON-RPC server at (http://[\d.]+:\d+)/", log)
    peer_id = load_or_create_identity(datadir.root).peer_id
    return started, f"/ip4/127.0.0.1/tcp/{p2p}/p2p/{peer_id}"


def one_size(root: Path, blocks: int, txs: int) -> dict:
    source, syncer = DataDir(root / "source"), DataDir(root / "syncer")
    for datadir in (source, syncer):
        datadir.create()
    peers = tuple(load_or_create_identity(d.root).peer_id for d in (source, syncer))
    began = time.perf_counter()
    run = Run(source.chaindata, FUNDED, nodes=peers)
    progress_every = max(blocks // 10, 1)
    for k in range(blocks):
        run.block(txs)
        if (k + 1) % progress_every == 0:
            print(f"  {txs} txs/block: built {k + 1:,} of {blocks:,} blocks", file=sys.stderr, flush=True)
    genesis = run.chain.genesis
    run.chain.store.close()
    built = time.perf_counter() - began
    for datadir in (source, syncer):
        datadir.genesis_file.write_text(genesis.to_json())
    store, _chain = open_chain(syncer, genesis)
    store.close()
    server, address = node(source, "source", None, root / "source.log")
    try:
        client, _ = node(syncer, "syncer", address, root / "syncer.log")
        try:
            rpc, began, peak = Rpc(client.url, timeout=5), time.perf_counter(), 0.0
            deadline = began + SYNC_SECONDS
            head = 0
            while head < blocks and time.perf_counter() < deadline:
                try:
                    head = int(rpc("eth_blockNumber"), 16)
                except RpcError:
                    pass
                peak = max(peak, rss_mib(client.pid) or 0.0)
                time.sleep(0.02)
            seconds = time.perf_counter() - began
            said = re.findall(r"synced (\d+) blocks from \S+ .*?in ([\d.]+)s, (\d+) blocks/s",
                              (root / "syncer.log").read_text())
        finally:
            client.stop()
    finally:
        server.stop()
    return {"txs_per_block": txs, "blocks": blocks, "synced": head, "seconds": round(seconds, 2),
            "blocks_per_s": round(head / seconds, 1), "txs_per_s": round(head * txs / seconds, 1),
            "build_seconds": round(built, 1), "syncer_rss_mib": round(peak, 1),
            "log_rounds": [{"blocks": int(n), "seconds": float(s), "blocks_per_s": int(r)} for n, s, r in said]}


def table(results: list[dict]) -> str:
    lines = ["txs/block  blocks  synced in  blocks/s  txs/s      syncer RSS  (node's log: rounds)"]
    for r in results:
        rounds = ", ".join(f"{x['blocks']} at {x['blocks_per_s']}/s" for x in r["log_rounds"]) or "—"
        lines.append(f"{r['txs_per_block']:<9}  {r['synced']:<6}  {r['seconds']:7.2f} s  {r['blocks_per_s']:8.1f}  "
                     f"{r['txs_per_s']:9.1f}  {r['syncer_rss_mib']:6.0f} MiB  ({rounds})")
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    results = []
    for txs in args.txs:
        with tempfile.TemporaryDirectory(prefix="gridnode-sync-") as tmp:
            results.append(one_size(Path(tmp), args.blocks, txs))
        if not args.json:
            print(table(results[-1:]).splitlines()[-1] if len(results) > 1 else table(results), flush=True)
    if args.json:
        print(json.dumps({"results": results}, indent=2))
    else:
        print("\n" + table(results))
    return 0 if all(r["synced"] >= r["blocks"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
