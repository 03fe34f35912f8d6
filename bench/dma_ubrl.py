"""DMA-UBRL wall time and accuracy (paper 000, Algorithm 1, §IV-A setting).

    python bench/dma_ubrl.py [--runs 3] [--episodes 2000] [--prosumers 8]

Times DMA-UBRL's 2,000 episodes (uniform pricing, N = 8) over a few seeds and
prints, for each, the final gap between the learned price and demands and the
analytic Stackelberg equilibrium, beside the gap of the best play the action
grid allows.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]  # the repository's `market`, not bench/market.py

from market.economics.stackelberg import grid_equilibrium, paper_market, uniform_equilibrium
from market.economics.wolf_phc import FOLLOWER_STEPS, PAPER_EPISODES, dma_ubrl


def _gaps(prices: tuple[float, ...], demands: tuple[float, ...], analytic) -> tuple[float, float]:
    price = abs(prices[0] - analytic.prices[0]) / analytic.prices[0]
    demand = float(np.max(np.abs(np.subtract(demands, analytic.demands)) / np.asarray(analytic.demands)))
    return price, demand


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="seeds to time (default 3)")
    parser.add_argument("--episodes", type=int, default=PAPER_EPISODES)
    parser.add_argument("--prosumers", type=int, default=8)
    args = parser.parse_args()

    market = paper_market(args.prosumers)
    analytic, best = uniform_equilibrium(market), grid_equilibrium(market)
    grid_price_gap, grid_demand_gap = _gaps(best.prices, best.demands, analytic)
    print(f"analytic equilibrium: price {analytic.prices[0]:.3f}, demands "
          f"{' '.join(f'{x:.2f}' for x in analytic.demands)}")
    print(f"best on the action grid: price {best.prices[0]:g} (gap {grid_price_gap:.2%}), "
          f"worst demand gap {grid_demand_gap:.2%}")
    print(f"\n{'seed':>4} {'episodes':>8} {'rounds':>6} {'seconds':>8} {'price':>6} "
          f"{'price gap':>9} {'demand gap':>10}")
    times = []
    for seed in range(args.runs):
        start = time.perf_counter()
        learned = dma_ubrl(market, np.random.default_rng(seed), episodes=args.episodes)
        times.append(time.perf_counter() - start)
        price_gap, demand_gap = _gaps(learned.prices, learned.demands, analytic)
        print(f"{seed:>4} {args.episodes:>8} {FOLLOWER_STEPS:>6} {times[-1]:>8.2f} {learned.prices[0]:>6g} "
              f"{price_gap:>9.2%} {demand_gap:>10.2%}")
    print(f"\nmedian wall time for {args.episodes} episodes: {np.median(times):.2f} s")


if __name__ == "__main__":
    main()
