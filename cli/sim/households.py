"""`gridnode sim households`: flags and summary table of `market.experiments.households`."""
from __future__ import annotations

import argparse

from market.economics.households import GameParams
from market.experiments.households import run as experiment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cooling-step", type=float, default=GameParams().cooling_step_kw,
                        help="resolution of the air-conditioner settings, kW (default %(default)s)")
    parser.add_argument("--max-rounds", type=int, default=100,
                        help="best-response rounds per slot before giving up (default %(default)s)")


def run(args: argparse.Namespace, progress: bool) -> dict:
    result = experiment(args.cooling_step, args.max_rounds, plot=args.plot, progress=progress)
    if not args.json:
        _print(result)
    return result


def _clock(hours: float) -> str:
    return f"{int(hours):02d}:{int(round(hours % 1 * 60)):02d}"


def _print(result: dict) -> None:
    before, after = result["consumption_kw"]["before"], result["consumption_kw"]["after"]
    print("slot   household 1 kW    grid import kW   indoor °C after      routes after (households 1-4)")
    for t, start in enumerate(result["slot_starts"]):
        print(f"{_clock(start)}  {before[0][t]:6.2f} → {after[0][t]:5.2f}   "
              f"{result['grid_import_kw']['before'][t]:6.2f} → {result['grid_import_kw']['after'][t]:6.2f}   "
              f"{' '.join(f'{c:4.1f}' for c in (row[t] for row in result['indoor_c_after']))}  "
              f"{' '.join(result['routes_after'][t])}")
    h1, grid, midday = result["household1_peak_kw"], result["grid_peak_kw"], result["midday_main_grid_kwh"]
    print(f"\npure Nash equilibrium found in {result['equilibrium_slots']} of {result['slots']} slots")
    print(f"household 1 peak: {h1['before']:.2f} → {h1['after']:.2f} kW, cut {result['household1_peak_cut']:.1%} "
          f"(paper ≈14 %)")
    print(f"grid-load peak:   {grid['before']:.2f} → {grid['after']:.2f} kW, cut {result['grid_peak_cut']:.1%} "
          f"(paper ≈10 %)")
    print(f"main-grid trading 10:00-15:00: {midday['before']:.2f} → {midday['after']:.2f} kWh")
    used = result["consumption_kwh"]
    print(f"day's PV {result['pv_kwh']:.1f} kWh against consumption {used['before']:.1f} → {used['after']:.1f} kWh "
          f"(paper: PV slightly less than consumption)")
