"""`gridnode sim stackelberg`: the elecoin pricing game and its DMA-UBRL learners (paper 000, Figs. 3–4).

* The paper's setting (N = 8, uniform price): the analytic Stackelberg
  equilibrium, the best play on the learners' action grids, and where
  DMA-UBRL ends after its episodes (keys "analytic", "grid", "learned", "gap").
* Fig. 3: one server and four prosumers learning under unified and under
  discriminated pricing.
* Fig. 4(a)–(d): the server's and the prosumers' (mean) utility against the
  number of prosumers and against the unit electricity price Q, for DMA-UBRL,
  a GA optimising only the server, a GA optimising only the prosumers, and
  random play.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from market.economics import stackelberg as game
from market.economics.baselines import Utilities, genetic_outcome, random_utilities, utilities
from market.economics.wolf_phc import FOLLOWER_STEPS, PAPER_EPISODES, LearnedPlay, dma_ubrl

FIGURES = ("all", "3", "4a", "4b", "4c", "4d")


@dataclass(frozen=True)
class Settings:
    """What one run plays."""

    figure: str = "all"
    """Which of the paper's figures to reproduce besides the N = 8 setting (one of FIGURES)."""
    episodes: int = PAPER_EPISODES
    """DMA-UBRL episodes per run."""
    follower_steps: int = FOLLOWER_STEPS
    """Trading rounds the prosumers play per posted price."""
    prosumers: int = 8
    """Prosumers in the main setting."""
    spread: float = game.DEFAULT_SPREAD
    """Spread of the prosumers' intentions, ± fraction of Q/w."""
    counts: tuple[int, ...] = (2, 4, 6, 8, 10, 12, 14, 16)
    """Prosumer counts for Fig. 4(a)-(b)."""
    unit_prices: tuple[float, ...] = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8)
    """Values of Q for Fig. 4(c)-(d)."""
    seed: int = 0


def _learn(market: game.Market, settings: Settings, seed: list[int], discriminate: bool = False) -> LearnedPlay:
    return dma_ubrl(market, np.random.default_rng(seed), episodes=settings.episodes, discriminate=discriminate,
                    follower_steps=settings.follower_steps)


def _played(learned: LearnedPlay, market: game.Market) -> game.Outcome:
    return game.outcome(np.asarray(learned.prices), np.asarray(learned.demands), market)


def _summary(played: game.Outcome) -> dict:
    return {"prices": [round(p, 4) for p in played.prices], "demands": [round(x, 3) for x in played.demands],
            "server_utility": round(played.server_utility, 3),
            "prosumer_utility": round(float(np.mean(played.prosumer_utilities)), 3)}


def _setting(settings: Settings, tick: Callable[[], None]) -> dict:
    """The paper's setting under one uniform price: analytic, best on the grid, learned."""
    market = game.paper_market(settings.prosumers, settings.spread)
    analytic = game.uniform_equilibrium(market)
    learned = _played(_learn(market, settings, [settings.seed, 0]), market)
    tick()
    result = {key: {"price": played.prices[0], **_summary(played)} for key, played in
              (("analytic", analytic), ("grid", game.grid_equilibrium(market)), ("learned", learned))}
    gaps = np.abs(np.subtract(learned.demands, analytic.demands)) / np.asarray(analytic.demands)
    result["gap"] = {"price": round(abs(learned.prices[0] - analytic.prices[0]) / analytic.prices[0], 4),
                     "demands": round(float(gaps.max()), 4)}
    return result


def _figure3(settings: Settings, tick: Callable[[], None]) -> tuple[dict, dict[str, LearnedPlay]]:
    """One server and four prosumers, unified and discriminated pricing."""
    market = game.paper_market(4, settings.spread)
    result, traces = {}, {}
    for k, (name, discriminate) in enumerate((("unified", False), ("discriminated", True))):
        analytic = game.discriminated_equilibrium(market) if discriminate else game.uniform_equilibrium(market)
        traces[name] = _learn(market, settings, [settings.seed, 3, k], discriminate)
        tick()
        result[name] = {"analytic": _summary(analytic),
                        "grid": _summary(game.grid_equilibrium(market, discriminate=discriminate)),
                        "learned": _summary(_played(traces[name], market))}
    return result, traces


def _compare(market: game.Market, settings: Settings, seed: list[int]) -> dict[str, Utilities]:
    """One point of Fig. 4: DMA-UBRL beside the one-sided GAs and random play."""
    learned = _learn(market, settings, seed)
    rng = np.random.default_rng(seed + [1])
    return {
        "dma_ubrl": utilities(_played(learned, market)),
        "ga_server": utilities(genetic_outcome(market, "server", rng)),
        "ga_prosumers": utilities(genetic_outcome(market, "prosumers", rng)),
        "random": random_utilities(market),
        "analytic": utilities(game.uniform_equilibrium(market)),
    }


def _sweep(points: list, market_at: Callable, key: str, tag: int, settings: Settings,
           tick: Callable[[], None]) -> list[dict]:
    rows = []
    for k, x in enumerate(points):
        compared = _compare(market_at(x), settings, [settings.seed, tag, k])
        tick()
        rows.append({key: x, **{name: {"server": round(u.server, 3), "prosumers": round(u.prosumers, 3)}
                                for name, u in compared.items()}})
    return rows


def run(settings: Settings = Settings(), plot: str | None = None, progress: bool = False) -> dict:
    """The N = prosumers setting and the wanted figures' data; writes the figure to `plot`
    (a PNG path) when given."""
    from tqdm import tqdm

    wanted = {"3", "4a", "4b", "4c", "4d"} if settings.figure == "all" else {settings.figure}
    by_count, by_price = bool(wanted & {"4a", "4b"}), bool(wanted & {"4c", "4d"})
    runs = 1 + 2 * ("3" in wanted) + len(settings.counts) * by_count + len(settings.unit_prices) * by_price
    bar = tqdm(total=runs, disable=not progress, file=sys.stderr, desc="DMA-UBRL runs")
    result: dict = {"params": {"episodes": settings.episodes, "follower_steps": settings.follower_steps,
                               "prosumers": settings.prosumers, "spread": settings.spread,
                               "theta": game.DEFAULT_THETA, "mean_intention": game.DEFAULT_MEAN_INTENTION}}
    result.update(_setting(settings, bar.update))
    traces = {}
    if "3" in wanted:
        result["figure3"], traces = _figure3(settings, bar.update)
    if by_count:
        result["figure4_prosumers"] = _sweep(
            settings.counts, lambda n: game.paper_market(n, settings.spread), "prosumers", 4, settings, bar.update)
    if by_price:
        result["figure4_unit_price"] = _sweep(
            settings.unit_prices, lambda q: game.paper_market(settings.prosumers, settings.spread, unit_price=q),
            "unit_price", 5, settings, bar.update)
    bar.close()
    if plot:
        _plot(result, traces, plot)
    return result


def _plot(result: dict, traces: dict[str, LearnedPlay], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("figure3", name) for name in traces] + [
        (key, side) for key in ("figure4_prosumers", "figure4_unit_price") if key in result
        for side in ("prosumers", "server")]
    fig, axes = plt.subplots(len(panels) // 2 or 1, 2, figsize=(12, 3.6 * (len(panels) // 2 or 1)), squeeze=False)
    for ax, (key, which) in zip(axes.flat, panels):
        if key == "figure3":
            play = traces[which]
            ax.plot(play.demand_trace, lw=0.8, label=[f"prosumer {i + 1}" for i in range(play.demand_trace.shape[1])])
            ax.set_ylabel("expected demand x_i")
            ax.legend(fontsize=7, loc="lower right")
            twin = ax.twinx()
            twin.plot(play.price_trace, color="black", lw=0.8, ls="--")
            twin.set_ylabel("expected price p (dashed)")
            ax.set_xlabel("episode")
            ax.set_title(f"Fig. 3: {which} pricing")
            continue
        x_key = "prosumers" if key == "figure4_prosumers" else "unit_price"
        rows = result[key]
        for name, style in (("dma_ubrl", "r-o"), ("ga_prosumers", "b-s"), ("ga_server", "g-^"), ("random", "y-d"),
                            ("analytic", "k:")):
            ax.plot([r[x_key] for r in rows], [r[name][which] for r in rows], style, label=name, ms=4)
        ax.set_xlabel("number of prosumers" if x_key == "prosumers" else "unit electricity price Q")
        ax.set_ylabel("mean prosumer utility" if which == "prosumers" else "edge-server utility")
        ax.set_title(f"Fig. 4: {which} utility")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
