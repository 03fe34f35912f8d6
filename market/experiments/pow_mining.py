"""`gridnode sim pow-mining`: paper 000's mining model (§II-B.1, eq. 1, Fig. 4(e)),
and with `--live` the same question asked of a real PoW localnet.

Model: M edge servers with equal hash power each win a block with probability
ρ = (1/M)·e^(−λ·l·s): the table and plot give it against M for several block
sizes s. Live: a localnet of miners capped at the given hash rates runs for
`--blocks` blocks, and each miner's measured win share is printed beside
β_j = α_j / Σα with a chi-square test of the counts."""
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
from consensus.pow_model import MiningParams, hash_shares, mining_utility, win_probability


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--servers", type=int, default=10, help="largest number of edge servers M (default 10)")
    parser.add_argument("--block-sizes", default="100,200,300,400",
                        help="block sizes s, comma-separated (default 100,200,300,400)")
    parser.add_argument("--live", action="store_true", help="also run a real PoW localnet and measure win shares")
    parser.add_argument("--hashrates", default="1000,2000,3000", help="--live: miners' hash rates (default 1000,2000,3000)")
    parser.add_argument("--blocks", type=int, default=60, help="--live: blocks to mine (default 60)")


def model_table(servers: int, sizes: list[int]) -> list[dict]:
    rows = []
    for count in range(1, servers + 1):
        row = {"servers": count}
        for size in sizes:
            params = MiningParams(block_size=size)
            row[f"s={size}"] = {"probability": win_probability(1 / count, params),
                                "utility": mining_utility(1 / count, params)}
        rows.append(row)
    return rows


def run(args: argparse.Namespace, progress: bool) -> dict:
    try:
        sizes = [int(part) for part in args.block_sizes.split(",")]
        rates = [int(part) for part in args.hashrates.split(",")]
    except ValueError:
        raise CommandError("--block-sizes and --hashrates take comma-separated integers") from None
    result = {"model": model_table(args.servers, sizes)}
    if not args.json:
        print("probability of a successful mine ρ = (1/M)·e^(−λ·l·s)   (λ = 0.01, l = 1)")
        print("   M " + "".join(f"{'s=' + str(s):>10}" for s in sizes))
        for row in result["model"]:
            print(f"{row['servers']:>4} " + "".join(f"{row[f's={s}']['probability']:>10.4f}" for s in sizes))
    if args.plot:
        _plot(result["model"], sizes, args.plot)
    if args.live:
        result["live"] = live(rates, args.blocks, progress)
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
    from scipy.stats import chisquare
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
    won = [sum(1 for h in headers[1:] if h["miner"] == miner) for miner in miners]
    betas = hash_shares(rates)
    intervals = [int(b["timestamp"], 16) - int(a["timestamp"], 16) for a, b in zip(headers, headers[1:])]
    mean = sum(intervals) / len(intervals)
    return {"miners": [{"address": m, "hashrate": r, "beta": b, "blocks": w, "share": w / blocks}
                       for m, r, b, w in zip(miners, rates, betas, won, strict=True)],
            "chi_square_p": float(chisquare(won, [blocks * b for b in betas]).pvalue),
            "orphans": stats["orphans"], "interval_mean": mean,
            "interval_std": (sum((i - mean) ** 2 for i in intervals) / len(intervals)) ** 0.5}


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


def _plot(rows: list[dict], sizes: list[int], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    servers = [row["servers"] for row in rows]
    for size in sizes:
        axis.plot(servers, [row[f"s={size}"]["probability"] for row in rows], marker="o", label=f"s = {size}")
    axis.set_xlabel("number of edge servers M")
    axis.set_ylabel("probability of a successful mine ρ")
    axis.set_title("Fig. 4(e): ρ = (1/M)·e^(−λls)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
