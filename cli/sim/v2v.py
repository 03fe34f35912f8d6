"""`gridnode sim v2v`: flags and summary table of `market.experiments.v2v`."""
from __future__ import annotations

import argparse

from market.experiments.v2v import Settings, run as experiment

DEFAULTS = Settings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evs", type=int, default=DEFAULTS.evs, help=f"EVs in the federation (default {DEFAULTS.evs})")
    parser.add_argument("--windows", type=int, default=DEFAULTS.windows,
                        help=f"24-hour training windows (default {DEFAULTS.windows})")
    parser.add_argument("--stays", type=int, default=DEFAULTS.stays,
                        help=f"simulated stays each EV learns from per window (default {DEFAULTS.stays})")
    parser.add_argument("--test-stays", type=int, default=DEFAULTS.test_stays,
                        help=f"test stays per EV (default {DEFAULTS.test_stays})")


def run(args: argparse.Namespace, progress: bool) -> dict:
    settings = Settings(evs=args.evs, windows=args.windows, stays=args.stays, test_stays=args.test_stays,
                        seed=args.seed)
    result = experiment(settings, plot=args.plot, progress=progress)
    if not args.json:
        _print(result)
    return result


def _print(result: dict) -> None:
    print(f"{'method':<15} {'profit per stay (¢)':>20} {'mean training reward':>21}")
    for name, profit in result["profit"].items():
        print(f"{name:<15} {profit:>20.2f} {result['training_reward'][name]:>21.2f}")
    print(f"\n{'band':<6} {'parked h':>9} {'sold kWh':>9} {'bought kWh':>11} {'PoSOC hour score':>17}")
    for b in ("off", "mid", "on"):
        print(f"{b:<6} {result['parked_hours_by_band'][b]:>9.2f} {result['sold_kwh_by_band'][b]:>9.2f} "
              f"{result['bought_kwh_by_band'][b]:>11.2f} {result['posoc_hour_score_by_band'][b]:>17.3f}")
    print(f"\nsold on-peak {result['onpeak_sell_share']:.1%}; bought off-peak {result['offpeak_buy_share']:.1%}, "
          f"outside on-peak {result['outside_onpeak_buy_share']:.1%}; "
          f"score-discharge correlation {result['posoc_discharge_correlation']:.2f}; "
          f"mLAG fees {result['mining_reward_cents']:.2f} ¢")
