"""`gridnode sim households`: flags and summary table of `market.experiments.households`, and
with `--live` the equilibrium strategies executed on a devnet (`market.experiments.households_live`)."""
from __future__ import annotations

import argparse

from cli.errors import CommandError
from market.economics import household_data as data
from market.economics.households import GameParams
from market.experiments.households import run as experiment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cooling-step", type=float, default=GameParams().cooling_step_kw,
                        help="resolution of the air-conditioner settings, kW (default %(default)s)")
    parser.add_argument("--max-rounds", type=int, default=100,
                        help="best-response rounds per slot before giving up (default %(default)s)")
    parser.add_argument("--live", action="store_true",
                        help="also execute the equilibrium strategies through the contracts of a fresh devnet "
                             "and recompute the peak cuts from the chain's events")
    parser.add_argument("--slots", type=_slots, default=None, metavar="FIRST:END",
                        help="--live: slot indices to execute, 0 = 7:00 .. 24 = 19:00 (default the whole day, 0:24)")
    parser.add_argument("--interval-blocks", type=int, default=None,
                        help="--live: the devnet's DoubleAuction interval in blocks (default 3)")


def _slots(text: str) -> range:
    first, sep, end = text.partition(":")
    try:
        chosen = range(int(first), int(end)) if sep else range(int(first), int(first) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST:END slot indices, got {text!r}") from None
    if not chosen or chosen.start < 0 or chosen.stop > len(data.SLOT_STARTS):
        raise argparse.ArgumentTypeError(f"slots must lie in 0:{len(data.SLOT_STARTS)}, got {text!r}")
    return chosen


def run(args: argparse.Namespace, progress: bool) -> dict:
    if args.cooling_step != GameParams().cooling_step_kw and args.live:
        raise CommandError("--live executes the default game (--cooling-step "
                           f"{GameParams().cooling_step_kw}); drop --cooling-step")
    if args.interval_blocks is not None and args.interval_blocks < 1:
        raise CommandError("--interval-blocks must be at least 1")
    result = experiment(args.cooling_step, args.max_rounds, plot=args.plot, progress=progress)
    if not args.json:
        _print(result)
    if args.live:
        from market.experiments.households_live import DEFAULT_INTERVAL_BLOCKS, run_live

        from market.agents.client import AgentError

        blocks = DEFAULT_INTERVAL_BLOCKS if args.interval_blocks is None else args.interval_blocks
        try:
            result["live"] = run_live(args.slots, blocks, progress=progress, max_rounds=args.max_rounds)
        except (AgentError, RuntimeError, OSError) as exc:
            raise CommandError(f"live run failed: {exc}") from None
        if not args.json:
            _print_live(result["live"])
    return result


def _clock(hours: float) -> str:
    return f"{int(hours):02d}:{int(round(hours % 1 * 60)):02d}"


def _print(result: dict) -> None:
    before, after = result["consumption_kw"]["before"], result["consumption_kw"]["after"]
    print("slot   household 1 kW    main-grid kW     indoor °C after      routes after (households 1-4)")
    for t, start in enumerate(result["slot_starts"]):
        print(f"{_clock(start)}  {before[0][t]:6.2f} → {after[0][t]:5.2f}   "
              f"{result['main_traffic_kw']['before'][t]:6.2f} → {result['main_traffic_kw']['after'][t]:6.2f}   "
              f"{' '.join(f'{c:4.1f}' for c in (row[t] for row in result['indoor_c_after']))}  "
              f"{' '.join(result['routes_after'][t])}")
    h1, grid, midday = result["household1_peak_kw"], result["grid_peak_kw"], result["midday_main_grid_kwh"]
    imports, at = result["import_peak_kw"], result["grid_peak_at"]
    print(f"\npure Nash equilibrium found in {result['equilibrium_slots']} of {result['slots']} slots")
    print(f"household 1 peak: {h1['before']:.2f} → {h1['after']:.2f} kW, cut {result['household1_peak_cut']:.1%} "
          f"(paper ≈14 %)")
    print(f"main-grid peak:   {grid['before']:.2f} kW at {_clock(at['before'])} → {grid['after']:.2f} kW at "
          f"{_clock(at['after'])}, cut {result['grid_peak_cut']:.1%} (paper ≈10 %)")
    print(f"net-import peak:  {imports['before']:.2f} → {imports['after']:.2f} kW, cut {result['import_peak_cut']:.1%}")
    print(f"main-grid trading 10:00-15:00: {midday['before']:.2f} → {midday['after']:.2f} kWh")
    used = result["consumption_kwh"]
    print(f"day's PV {result['pv_kwh']:.1f} kWh against consumption {used['before']:.1f} → {used['after']:.1f} kWh "
          f"(paper: PV slightly less than consumption)")


def _print_live(live: dict) -> None:
    print(f"\nlive: {len(live['slots'])} slots executed on a devnet in {live['seconds']:.0f} s "
          f"(blocks {live['blocks'][0]}-{live['blocks'][1]}, {live['orders']} orders, "
          f"DoubleAuction interval {live['interval_blocks']} blocks)")
    print("slot   main grid kW sim | chain   community kWh sim | chain   household 1 kW sim | chain")
    for t, start in enumerate(live["slots"]):
        print(f"{_clock(start)}   {live['main_grid_kw']['simulation'][t]:8.3f} | {live['main_grid_kw']['chain'][t]:<8.3f}"
              f"{live['community_kwh']['simulation'][t]:13.3f} | {live['community_kwh']['chain'][t]:<8.3f}"
              f"{live['household1_kw']['simulation'][t]:12.3f} | {live['household1_kw']['chain'][t]:.3f}")
    sim, chain, before = live["simulation"], live["chain"], live["before"]

    def cut(value) -> str:
        return "   n/a" if value is None else f"{value:6.1%}"

    print(f"\n{'over these slots':<22}{'before':>8}{'after (sim)':>13}{'cut':>8}{'after (chain)':>15}{'cut':>8}")
    for key, label in (("household1_peak", "household 1 peak kW"), ("grid_peak", "main-grid peak kW"),
                       ("import_peak", "net-import peak kW")):
        print(f"{label:<22}{before[key + '_kw']:8.2f}{sim[key + '_kw']:13.2f}{cut(sim[key + '_cut']):>8}"
              f"{chain[key + '_kw']:15.2f}{cut(chain[key + '_cut']):>8}")
    if live["agrees"]:
        print("the chain's events agree with every reading and order sent, to the Wh")
    else:
        print("the chain's events disagree with what was sent:")
        for problem in live["problems"]:
            print("  " + problem)
