"""`gridnode sim vpp`: flags and tables of `market.experiments.vpp` (paper 004 §V), and with
`--live` the same day on a localnet with one process per VPP agent."""
from __future__ import annotations

import argparse

from cli.errors import CommandError
from cli.sim import integers
from market.experiments.vpp import run as experiment, run_live


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Paper 004's VPP cases I-IV (Tables 2-4, Fig. 5) on a synthetic day whose 03:00, 08:00, "
                          "13:00 and 21:00 hours are Table 3's rows: each hour's case, the running scheme used for "
                          "it (I: RS1, II and III: RS2, IV: RS3), and per case the energy traded, the prices, the "
                          "auctions opened and the bids sent/accepted. Off chain by default (Algorithm 1 replayed); "
                          "--live runs the coordinator, ESS, diesel generator and households as separate processes "
                          "against a fresh localnet and reads the figures back from the chain. --seed is unused "
                          "(nothing is random).")
    parser.add_argument("--households", type=int, default=4, help="PV/wind households in the VPP (default 4)")
    parser.add_argument("--hours", type=integers, metavar="H1,H2,…",
                        help="simulated hours to play, e.g. 3,8,13,21 (default: all 24)")
    parser.add_argument("--live", action="store_true",
                        help="run the agents as processes against a localnet and report what the chain shows")
    parser.add_argument("--nodes", type=int, default=1, help="--live: localnet nodes (PoA signers, default 1)")
    parser.add_argument("--seconds-per-hour", type=int, default=6,
                        help="--live: blocks (1 s each) per simulated hour, at least 6 (default 6: 24 h in 2.4 min)")
    parser.add_argument("--logs", metavar="DIR",
                        help="--live: keep the localnet and each agent's event lines (ROLE.jsonl) in this new "
                             "directory (default: a temporary one, removed)")


def run(args: argparse.Namespace, progress: bool) -> dict:
    if args.households < 1:
        raise CommandError("--households is at least 1")
    try:
        if args.live:
            result = run_live(args.households, args.nodes, args.seconds_per_hour, args.hours, plot=args.plot,
                              progress=progress, logs=args.logs, report=None if not args.json else (lambda text: None))
        else:
            result = experiment(args.households, plot=args.plot, hours=args.hours)
    except (ValueError, RuntimeError) as exc:
        raise CommandError(str(exc)) from None
    if not args.json:
        _print(result)
        if args.plot:
            print(f"figure written to {args.plot}")
    return result


def _elc(wei: int | None) -> str:
    return "-" if wei is None else f"{wei / 10 ** 18:.6f}"


def _print(result: dict) -> None:
    print(f"{'hour':>4} {'TG kW':>9} {'TL kW':>9} {'TG-TL':>9} {'+backup':>9} {'ESS kWh':>8}  case  RS   lots")
    for row in result["hours"]:
        print(f"{row['hour']:>4} {row['generation_w'] / 1e3:>9.3f} {row['load_w'] / 1e3:>9.3f} "
              f"{row['gap_w'] / 1e3:>9.3f} {row['aided_w'] / 1e3:>9.3f} {row['stored_wh'] / 1e3:>8.1f}  "
              f"{row['case']:<5} {row['scheme']}  {len(row['lots'])}")
    source = "on chain" if result["mode"] == "live" else "off chain, Algorithm 1"
    print(f"\nper case ({source}; prices in ELC per kWh, grid price 0.001):")
    print(f"{'case':<9}{'hours':<24}{'RS':<5}{'on sale kWh':>12}{'traded kWh':>12}{'auctions':>9}"
          f"{'bids sent':>10}{'accepted':>9}{'price min':>11}{'mean':>10}{'max':>10}")
    for name, case in result["cases"].items():
        hours = ",".join(f"{h:02d}" for h in case["hours"]) or "-"
        prices = case["price_wei_per_kwh"]
        print(f"Case {name:<4}{hours[:23]:<24}{case['scheme']:<5}{case['energy_planned_wh'] / 1e3:>12.1f}"
              f"{case['energy_traded_wh'] / 1e3:>12.1f}{case['auctions']:>9}{case['bids_sent']:>10}"
              f"{case['bids_accepted']:>9}{_elc(prices['min']):>11}{_elc(prices['mean']):>10}{_elc(prices['max']):>10}")
    if result["mode"] == "live":
        print(f"\nfactory auctions opened: {result['factory_auctions']} "
              f"(blocks {result['first_block']}..{result['last_block']}, {result['nodes']} node(s))")
        for role, agent in result["agents"].items():
            if agent["errors"] or agent["exit"]:
                print(f"  {role}: exit {agent['exit']}, {len(agent['errors'])} errors, e.g. {agent['errors'][:1]}")
