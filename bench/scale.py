#!/usr/bin/env python3
"""Whether a block's cost depends on the size of the state and of the history: the time to build
and to import a block of T transfers on a devnet chain with A funded accounts (each size in a
fresh process, so RSS is that state's), and on one that already holds H transactions, with the
reads a wallet makes there (eth_getLogs over the newest blocks, eth_getTransactionReceipt of the
first and the newest transaction).

The chain is driven in process, as `gridnode start` drives it: transactions are admitted to the
pool against the head state, `build_block` is the producer's (its state-root update is timed
apart), and the import is the validator's `Chain.import_block` of that same block (verification,
execution, the roots, the LevelDB batch). Transfers go to random funded accounts, so every block
touches random paths of the state tree; one transaction in ten is a FiatToken approval, so the
history has logs to find.

    python bench/scale.py                                   # 10k/100k/1M accounts, a 1M-tx history
    python bench/scale.py --accounts 10000 --history 50000 --json
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nodes import rss_mib  # noqa: E402

from consensus.engine import Signer  # noqa: E402
from genesis.config import Genesis  # noqa: E402
from genesis.devnet import dev_accounts, devnet_genesis_document  # noqa: E402
from market.contracts.addresses import FIAT_TOKEN  # noqa: E402
from node.chain import Chain  # noqa: E402
from node.intake import TransactionIntake  # noqa: E402
from node.mempool import Mempool  # noqa: E402
from node.producer import build_block  # noqa: E402
from node.rpc.eth import EthApi  # noqa: E402
from node.store import Store  # noqa: E402
from vm.crypto import keccak256  # noqa: E402
from vm.native.contract import encode_call  # noqa: E402
from vm.transactions import sign_legacy  # noqa: E402
from vm.types import Address  # noqa: E402

GAS_PRICE = 100 * 10**9
HISTORY_BLOCK_TXS = 1_100
"""Transactions per history block: about 27M gas with the approvals, under the 30M target of a
60M block, so the base fee stays at its floor however long the history."""
LOG_BLOCKS = 50
"""Blocks eth_getLogs reads: about 5,500 approvals, under the node's cap of 10,000 logs an answer."""
SENDERS = 19


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", default="10000,100000,1000000",
                        help="funded accounts in genesis, one run each (default 10000,100000,1000000)")
    parser.add_argument("--txs", default="100,1000,2500", help="transfers per measured block (default 100,1000,2500)")
    parser.add_argument("--history", type=int, default=1_000_000,
                        help="transactions in the history run, on the first --accounts size (default 1000000; 0: none)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one size, in this process (the parent's child)
    args = parser.parse_args()
    args.accounts = [int(a) for a in args.accounts.split(",")]
    args.txs = [int(t) for t in args.txs.split(",")]
    if max(args.txs) * 21_000 > 60_000_000:
        parser.error("--txs: at most 2857 transfers fit a 60M-gas block")
    return args


class Run:
    """A devnet chain with `accounts` extra funded accounts, its pool and intake, and the senders' nonces."""

    def __init__(self, directory: Path, accounts: int, nodes: tuple[str, ...] = ()) -> None:
        """`nodes`: peer ids the genesis admits (bench/sync.py serves this chain to a node)."""
        self.rng = random.Random(accounts)
        self.funded = [Address(keccak256(b"scale %d" % k)[-20:]) for k in range(accounts)]
        self.signer = Signer(b"\x07" * 32)
        document = devnet_genesis_document(self.signer.address)
        document["accounts"].update({a.to_checksum(): {"balance": "1"} for a in self.funded})
        document["nodes"] = list(nodes)
        started = time.perf_counter()
        genesis = Genesis.from_json(document)
        self.chain = Chain(Store(str(directory)), genesis, genesis.create_engine())
        self.genesis_seconds = time.perf_counter() - started
        self.mempool = Mempool(self.chain.chain_id, self.chain.genesis.gas_limit)
        self.intake = TransactionIntake(self.chain, self.mempool)
        self.keys = [a.private_key for a in dev_accounts(SENDERS + 1)[1:]]
        self.nonces = [0] * SENDERS
        self.sent = 0
        self.first_tx: bytes | None = None
        self.root_seconds = 0.0
        tree = self.chain.state_db.tree
        prepare = tree.prepare

        def timed_prepare(changes):
            began = time.perf_counter()
            try:
                return prepare(changes)
            finally:
                self.root_seconds += time.perf_counter() - began

        tree.prepare = timed_prepare  # the state-root update, timed apart from the rest of the build

    def fill(self, count: int) -> None:
        for _ in range(count):
            sender = self.sent % SENDERS
            if self.sent % 10 == 9:
                to, data, gas, value = FIAT_TOKEN, encode_call("approve(address,uint256)",
                                                               (self.rng.choice(self.funded).to_checksum(),
                                                                self.sent)), 100_000, 0
            else:
                to, data, gas, value = self.rng.choice(self.funded), b"", 21_000, 1
            raw = sign_legacy(self.chain.chain_id, self.nonces[sender], GAS_PRICE, gas, to, value, data,
                              self.keys[sender])
            tx, _ = self.intake.submit(raw)
            self.first_tx = self.first_tx or tx.hash
            self.nonces[sender] += 1
            self.sent += 1

    def block(self, count: int, measure: bool = False) -> dict | None:
        """A block of `count` pooled transactions: built, sealed and imported (timed if `measure`)."""
        self.fill(count)
        timestamp = self.chain.head.timestamp + 1
        self.root_seconds = 0.0
        began = time.perf_counter()
        executed = build_block(self.chain, self.mempool, self.signer, timestamp)
        built = time.perf_counter() - began
        root = self.root_seconds
        block = executed.sealed(self.chain.engine.seal(executed.block.header, self.signer)).block
        began = time.perf_counter()
        self.chain.import_block(block, now=timestamp)
        imported = time.perf_counter() - began
        self.mempool.prune(self.chain.state())
        if len(block.transactions) != count:
            raise SystemExit(f"block {block.header.number} carried {len(block.transactions)} of {count} transactions")
        if not measure:
            return None
        return {"txs": count, "build_ms": built * 1000, "root_ms": root * 1000, "import_ms": imported * 1000,
                "us_per_tx": (built + imported) / count * 1e6}

    def reads(self) -> dict:
        """What a wallet asks of a long history, timed: logs of the newest blocks, two receipts."""
        api = EthApi(self.chain, self.intake, [])
        head = self.chain.head.number
        began = time.perf_counter()
        logs = api.eth_getLogs({"fromBlock": hex(max(head - LOG_BLOCKS + 1, 0)), "toBlock": "latest",
                                "address": FIAT_TOKEN.to_checksum()})
        logs_ms = (time.perf_counter() - began) * 1000
        newest = self.chain.transactions(self.chain.head.hash)[-1].hash
        receipts = {}
        for name, tx_hash in (("first", self.first_tx), ("newest", newest)):
            began = time.perf_counter()
            receipt = api.eth_getTransactionReceipt("0x" + tx_hash.hex())
            receipts[name] = (time.perf_counter() - began) * 1000
            assert receipt is not None and receipt["status"] == "0x1"
        return {"getLogs_ms": logs_ms, "logs": len(logs), "log_blocks": min(LOG_BLOCKS, head + 1),
                "receipt_first_ms": receipts["first"], "receipt_newest_ms": receipts["newest"]}


def one_size(accounts: int, block_sizes: list[int], history: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="gridnode-scale-") as tmp:
        run = Run(Path(tmp) / "chaindata", accounts)
        result = {"accounts": accounts, "genesis_s": run.genesis_seconds, "rss_mib": rss_mib_self()}
        run.block(min(block_sizes))  # warm: the first block pays for imports and cold caches
        result["blocks"] = [run.block(t, measure=True) for t in block_sizes]
        if history:
            result["before_history"] = {**run.block(max(block_sizes), measure=True), **run.reads()}
            progress_every = max(history // HISTORY_BLOCK_TXS // 20, 1)
            for k in range(-(-history // HISTORY_BLOCK_TXS)):
                run.block(min(HISTORY_BLOCK_TXS, history - k * HISTORY_BLOCK_TXS))
                if k % progress_every == 0:
                    print(f"  history: {run.sent:,} transactions, block {run.chain.head.number}", file=sys.stderr,
                          flush=True)
            result["history_txs"] = run.sent
            result["after_history"] = {**run.block(max(block_sizes), measure=True), **run.reads(),
                                       "blocks": run.chain.head.number, "rss_mib": rss_mib_self()}
        run.chain.store.close()
        return result


def rss_mib_self() -> float | None:
    return rss_mib(os.getpid())


def tables(results: list[dict]) -> str:
    sizes = [b["txs"] for b in results[0]["blocks"]]
    lines = ["accounts    genesis  RSS       " + "  ".join(f"build+import {t} txs (root)" for t in sizes)]
    for r in results:
        cells = [f"{b['build_ms']:6.0f}+{b['import_ms']:<6.0f} ms ({b['root_ms']:.0f}) {b['us_per_tx']:4.0f} µs/tx"
                 for b in r["blocks"]]
        lines.append(f"{r['accounts']:<10,}  {r['genesis_s']:5.1f} s  {r['rss_mib']:5.0f} MiB  " + "  ".join(cells))
    for r in results:
        if "after_history" in r:
            lines.append("")
            lines.append(f"history on {r['accounts']:,} accounts: {r['history_txs']:,} transactions in "
                         f"{r['after_history']['blocks']} blocks")
            lines.append("               block of {txs} txs: build+import (root)   getLogs over {log_blocks} blocks"
                         "   receipt first / newest".format(**r["after_history"]))
            for name in ("before_history", "after_history"):
                h = r[name]
                lines.append(f"  {name.split('_')[0]:<6} history  {h['build_ms']:6.0f}+{h['import_ms']:<6.0f} ms "
                             f"({h['root_ms']:.0f})          {h['getLogs_ms']:7.1f} ms ({h['logs']} logs)"
                             f"        {h['receipt_first_ms']:.2f} / {h['receipt_newest_ms']:.2f} ms")
            lines.append(f"  RSS after the history: {r['after_history']['rss_mib']:.0f} MiB")
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    if args.one is not None:
        history = args.history if args.one == args.accounts[0] else 0
        print(json.dumps(one_size(args.one, args.txs, history)))
        return 0
    results = []
    for accounts in args.accounts:
        print(f"{accounts:,} accounts …", file=sys.stderr, flush=True)
        done = subprocess.run([sys.executable, __file__, "--one", str(accounts), "--accounts",
                               ",".join(map(str, args.accounts)), "--txs", ",".join(map(str, args.txs)),
                               "--history", str(args.history)], stdout=subprocess.PIPE, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the run with {accounts} accounts failed (exit {done.returncode})")
        results.append(json.loads(done.stdout.splitlines()[-1]))
    print(json.dumps({"runs": results}) if args.json else tables(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
