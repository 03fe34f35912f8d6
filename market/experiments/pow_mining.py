"""`gridnode sim pow-mining`: paper 000's mining model (§II-B.1, eq. 1, Fig. 4(e)), and the
same question asked of a real PoW localnet.

Model: M edge servers with equal hash power each win a block with probability
ρ = (1/M)·e^(−λ·l·s): `model_table` gives it against M for several block sizes s and
`plot` draws Fig. 4(e). Live: a localnet of miners capped at given hash rates runs for a
number of blocks (`cli.sim.pow_mining` starts it), and `live_summary` sets each miner's
measured win share beside β_j = α_j / Σα, with a chi-square test of the counts."""
from __future__ import annotations

from collections.abc import Sequence

from consensus.pow_model import MiningParams, hash_shares, mining_utility, win_probability


def model_table(servers: int, sizes: Sequence[int]) -> list[dict]:
    """ρ and the expected utility (eq. 1) of one of M = 1..servers equal miners, per block size."""
    rows = []
    for count in range(1, servers + 1):
        row = {"servers": count}
        for size in sizes:
            params = MiningParams(block_size=size)
            row[f"s={size}"] = {"probability": win_probability(1 / count, params),
                                "utility": mining_utility(1 / count, params)}
        rows.append(row)
    return rows


def run(servers: int = 10, sizes: Sequence[int] = (100, 200, 300, 400), plot: str | None = None) -> dict:
    """The model table for up to `servers` miners and these block sizes; writes Fig. 4(e) to
    `plot` (a PNG path) when given."""
    result = {"model": model_table(servers, sizes)}
    if plot:
        _plot(result["model"], sizes, plot)
    return result


def live_summary(rates: Sequence[int], miners: Sequence[str], headers: Sequence[dict], orphans: int) -> dict:
    """Win shares of a live run: `miners[j]` mined at `rates[j]` hashes per second; `headers` are
    the run's blocks in the JSON-RPC form (`miner`, `timestamp`), from the block before the
    first mined one; `orphans` is the node's orphan count."""
    from scipy.stats import chisquare

    blocks = len(headers) - 1
    won = [sum(1 for h in headers[1:] if h["miner"] == miner) for miner in miners]
    betas = hash_shares(rates)
    intervals = [int(b["timestamp"], 16) - int(a["timestamp"], 16) for a, b in zip(headers, headers[1:])]
    mean = sum(intervals) / len(intervals)
    return {"miners": [{"address": m, "hashrate": r, "beta": b, "blocks": w, "share": w / blocks}
                       for m, r, b, w in zip(miners, rates, betas, won, strict=True)],
            "chi_square_p": float(chisquare(won, [blocks * b for b in betas]).pvalue),
            "orphans": orphans, "interval_mean": mean,
            "interval_std": (sum((i - mean) ** 2 for i in intervals) / len(intervals)) ** 0.5}


def _plot(rows: list[dict], sizes: Sequence[int], path: str) -> None:
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
