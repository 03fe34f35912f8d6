"""`gridnode sim pow-mining`: flags and tables of `market.experiments.pow_mining`, and with
`--live` a real PoW localnet (`gridnode localnet --engine pow`) mined for `--blocks` blocks."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cli.errors import CommandError
from cli.rpc_client import RpcClient
from cli.sim import integers
from market.experiments.pow_mining import live_summary, run as experiment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--servers", type=int, default=10, help="largest number of edge servers M (default 10)")
    parser.add_argument("--block-sizes", type=integers, default=[100, 200, 300, 400],
                        help="block sizes s, comma-separated (default 100,200,300,400)")
    parser.add_argument("--live", action="store_true", help="also run a real PoW localnet and measure win shares")
    parser.add_argument("--hashrates", type=integers, default=[1000, 2000, 3000],
                        help="--live: miners' hash rates (default 1000,2000,3000)")
    parser.add_argument("--blocks", type=int, default=60, help="--live: blocks to mine (default 60)")


def run(args: argparse.Namespace, progress: bool) -> dict:
    sizes = args.block_sizes
    result = experiment(args.servers, sizes, plot=args.plot)
    if not args.json:
        print("probability of a successful mine ρ = (1/M)·e^(−λ·l·s)   (λ = 0.01, l = 1)")
        print("   M " + "".join(f"{'s=' + str(s):>10}" for s in sizes))
        for row in result["model"]:
            print(f"{row['servers']:>4} " + "".join(f"{row[f's={s}']['probability']:>10.4f}" for s in sizes))
    if args.live:
        result["live"] = live(args.hashrates, args.blocks, progress)
        if not args.json:
            print(f"\nlive PoW localnet, {args.blocks} blocks:")
            print(f"{'miner':<44}{'hash/s':>8}{'beta':>8}{'won':>6}{'share':>8}")
            for miner in result["live"]["miners"]:
                print(f"{miner['address']:<44}{miner['hashrate']:>8}{miner['beta']:>8.3f}{miner['blocks']:>6}"
                      f"{miner['share']:>8.3f}")
            live_result = result["live"]
            print(f"chi-square p = {live_result['chi_square_p']:.3f}; orphans {live_result['orphans']}; "
                  f"block interval {live_result['interval_mean']:.2f} ± {live_result['interval_std']:.2f} s")
    return result


def live(rates: list[int], blocks: int, progress: bool) -> dict:
    """Run `gridnode localnet --engine pow` with these hash rates until `blocks` are mined."""
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="gridnode-pow-") as directory:
        command = [sys.executable, "-m", "cli.main", "localnet", "--engine", "pow", "--dir", directory,
                   "--hashrates", ",".join(map(str, rates)), "--block-time", "1",
                   "--difficulty", str(sum(rates) // 2)]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            nodes = _wait_for_localnet(Path(directory) / "localnet.json", len(rates))
            clients = [RpcClient(node["rpc"]) for node in nodes]
            miners = [client.call("grid_nodeInfo")["producer"] for client in clients]
            start = int(clients[0].call("eth_blockNumber"), 16)
            with tqdm(total=blocks, disable=not progress, file=sys.stderr, desc="blocks") as bar:
                mined = 0
                while mined < blocks:
                    time.sleep(0.5)
                    now = min(int(clients[0].call("eth_blockNumber"), 16) - start, blocks)
                    bar.update(now - mined)
                    mined = now
            headers = [clients[0].call("eth_getBlockByNumber", hex(n), False) for n in range(start, start + blocks + 1)]
            stats = clients[0].call("grid_miningStats")
        finally:
            process.terminate()
            process.wait(timeout=60)
    return live_summary(rates, miners, headers, stats["orphans"])


def _wait_for_localnet(description: Path, count: int) -> list[dict]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if description.exists():
            nodes = json.loads(description.read_text())["nodes"]
            try:
                if all(int(RpcClient(n["rpc"], timeout=2).call("net_peerCount"), 16) >= count - 1 for n in nodes):
                    return nodes
            except CommandError:
                pass  # not listening yet
        time.sleep(0.5)
    raise CommandError("the PoW localnet did not come up within 60 s")
