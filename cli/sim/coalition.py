"""`gridnode sim coalition`: flags and summary table of `market.experiments.coalition`; with
`--live` a PoEG localnet with metered prosumers (`market.experiments.coalition_live`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cli.errors import CommandError
from cli.sim import integers
from market.economics.coalition import SOLVERS
from market.economics.community import DISTRIBUTIONS
from consensus.rules.line_loss import FLOOR_PPM, PPM, LossModel
from market.experiments.coalition import Settings, run as experiment
from market.experiments.coalition_live import LiveSettings

DEFAULTS = Settings()


def _dists(text: str) -> list[str]:
    names = [v for v in text.split(",") if v]
    for name in names:
        if name not in DISTRIBUTIONS:
            raise argparse.ArgumentTypeError(f"unknown distribution {name!r}; choose from {','.join(DISTRIBUTIONS)}")
    return names


def _ppm(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer number of ppm, got {text!r}") from None
    if not 0 <= value <= PPM:
        raise argparse.ArgumentTypeError(f"expected ppm between 0 and {PPM}, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prosumers", type=integers, default=None,
                        help="comma-separated community sizes (default 10,20,30,40,50); --live: one size, "
                             "10..50 (default 20)")
    parser.add_argument("--dist", type=_dists, default=None,
                        help="comma-separated energy distributions: normal, uniform, lognormal (default all); "
                             "--live: one (default uniform)")
    parser.add_argument("--trials", type=int, default=DEFAULTS.trials,
                        help=f"random communities averaged per point (default {DEFAULTS.trials})")
    parser.add_argument("--solver", choices=SOLVERS, default=DEFAULTS.solver,
                        help="PuLP's LP solver for coalitions with several sellers and buyers: highs "
                             "(in-process, default) or cbc (a subprocess per LP)")
    loss = DEFAULTS.loss
    parser.add_argument("--floor-ppm", type=_ppm, default=loss.base_ppm, metavar="PPM",
                        help="distance-independent line loss every transfer pays, in ppm (default "
                             f"{loss.base_ppm}: eq. 3.11's C·dist_ij alone; {FLOOR_PPM} = the 1.8 %% floor "
                             "of the earlier reading)")
    parser.add_argument("--loss-floor", dest="floor_ppm", action="store_const", const=FLOOR_PPM,
                        help=f"shorthand for --floor-ppm {FLOOR_PPM}")
    parser.add_argument("--per-km-ppm", type=_ppm, default=loss.per_km_ppm, metavar="PPM",
                        help=f"C of eq. 3.11, line loss per km in ppm (default {loss.per_km_ppm} = "
                             f"{loss.per_km_ppm / 10_000:g} %%/km)")
    parser.add_argument("--cap-ppm", type=_ppm, default=loss.cap_ppm, metavar="PPM",
                        help=f"largest loss of any transfer in ppm (default {loss.cap_ppm} = "
                             f"{loss.cap_ppm / 10_000:g} %%, the top of the thesis's range)")
    parser.add_argument("--iterations", action="store_true",
                        help="also print the Table 3.2 iteration log and the reward split of a 10-prosumer case")
    live = LiveSettings()
    parser.add_argument("--live", action="store_true",
                        help="run a PoEG localnet whose prosumers' meter oracles post the generator's readings "
                             "every slot, and check settlement, agreement, producers and the draw (chi-square)")
    parser.add_argument("--nodes", type=int, default=live.nodes, help=f"--live: validator nodes (default {live.nodes})")
    parser.add_argument("--slots", type=int, default=live.slots, help=f"--live: slots to run (default {live.slots})")
    parser.add_argument("--slot-seconds", type=int, default=live.slot_seconds,
                        help=f"--live: the meters' settlement slot in seconds (default {live.slot_seconds})")
    parser.add_argument("--kill-producer-at", type=int, default=None, metavar="SLOT",
                        help="--live: SIGKILL the drawn producer at the start of this run slot (0-based), "
                             "check its fallback takes over and it is slashed, then restart it")
    parser.add_argument("--dir", type=Path, default=None,
                        help="--live: a new directory for the localnet (default a temporary one, removed)")


def run(args: argparse.Namespace, progress: bool) -> dict:
    if args.live:
        return _run_live(args)
    args.prosumers = args.prosumers or list(DEFAULTS.prosumers)
    args.dist = args.dist or list(DEFAULTS.dist)
    if args.trials < 1:
        raise CommandError("--trials must be at least 1")
    try:
        loss = LossModel(base_ppm=args.floor_ppm, per_km_ppm=args.per_km_ppm, cap_ppm=args.cap_ppm)
    except ValueError as error:
        raise CommandError(str(error)) from None
    settings = Settings(prosumers=tuple(args.prosumers), dist=tuple(args.dist), trials=args.trials,
                        solver=args.solver, loss=loss, iterations=args.iterations, seed=args.seed)
    result = experiment(settings, plot=args.plot, progress=progress)
    if not args.json:
        _print(result)
    return result


def _print(result: dict) -> None:
    model = result["loss_model"]
    print(f"loss model: {model['reading']}: floor {model['base_ppm']} ppm, C = {model['per_km_ppm']} ppm/km, "
          f"cap {model['cap_ppm']} ppm; {result['trials']} communities per point")
    print(f"{'dist':<10} {'prosumers':>9} {'traded in coalitions':>21} {'loss saved ± s.e.':>18} {'seconds':>8}")
    for r in result["runs"]:
        print(f"{r['dist']:<10} {r['prosumers']:>9} {r['traded_in_coalitions']:>21.1%} "
              f"{r['loss_saved']:>10.1%} ± {r['loss_saved_se']:>4.1%} {r['seconds']:>8.3f}")
    print(f"\nmean over distributions against the thesis (Fig. 3.9(b); (a) ≈{result['thesis']['traded_in_coalitions']:.0%}):")
    print(f"{'prosumers':>9} {'traded in coalitions':>21} {'loss saved ± s.e.':>18} {'thesis':>7}")
    for r in result["by_prosumers"]:
        thesis = f"{r['thesis_loss_saved']:.1%}" if r["thesis_loss_saved"] is not None else "-"
        print(f"{r['prosumers']:>9} {r['traded_in_coalitions']:>21.1%} "
              f"{r['loss_saved']:>10.1%} ± {r['loss_saved_se']:>4.1%} {thesis:>7}")
    if "log" in result:
        log = result["log"]
        print("\nIteration log, 10 prosumers (Table 3.2): partition | coalition 𝒫𝒮 | 𝒫𝒮 of P0..P9 (kWh)")
        for itr, r in enumerate(log["rounds"], start=1):
            print(f"{itr:>2}  {r['partition']}  {r['coalition_scores']}  {r['member_scores']}")
        print(f"miner coalition {log['miner']}, ℳ_r = {log['reward_kwh']} kWh, Shapley shares {log['shares_kwh']}")


def _run_live(args: argparse.Namespace) -> dict:
    from market.experiments.coalition_live import run_live

    if args.prosumers is not None and len(args.prosumers) != 1 or args.dist is not None and len(args.dist) != 1:
        raise CommandError("--live runs one community: give one --prosumers size and at most one --dist")
    settings = LiveSettings(nodes=args.nodes, prosumers=args.prosumers[0] if args.prosumers else LiveSettings.prosumers,
                            slots=args.slots, slot_seconds=args.slot_seconds, seed=args.seed,
                            dist=args.dist[0] if args.dist else LiveSettings.dist,
                            kill_producer_at=args.kill_producer_at, directory=args.dir)
    try:
        settings.validate()
        result = run_live(settings)
    except (ValueError, RuntimeError) as error:
        raise CommandError(f"live run failed: {error}") from None
    if not args.json:
        _print_live(result)
        if not result["passed"]:
            raise CommandError("live checks failed (see above)")
    return result


def _print_live(result: dict) -> None:
    s, checks = result["settings"], result["checks"]
    print(f"\nlive PoEG: {s['nodes']} nodes, {s['prosumers']} prosumers, {s['slots']} slots of "
          f"{s['slot_seconds']} s in {result['seconds']:.0f} s")

    names = {v.lower(): f"node{k}" for k, v in enumerate(result["validators"])}

    def line(name: str, ok: bool | None, text: str) -> None:
        print(f"  {'n/a ' if ok is None else 'PASS' if ok else 'FAIL'}  {name:<11} {text}")

    c = checks["settled"]
    line("settled", c["ok"], f"{c['settled']}/{c['slots']} slots, each block carrying only its settlement"
         + (f"; not settled: {c['not_settled']}" if c["not_settled"] else ""))
    c = checks["readings"]
    line("readings", c["ok"], f"{c['posted']} posted, {c['in_their_slot']} mined in their slot before its "
                              f"settlement, {len(c['failed'])} failed")
    c = checks["agreement"]
    line("agreement", c["ok"], f"{c['nodes']} nodes identical at every height 0..{c['compared_up_to']}"
         + (f"; differ at {c['differing_heights']}" if c["differing_heights"] else ""))
    c = checks["producers"]
    line("producers", c["ok"], f"{c['blocks']} blocks: {c['by_first']} by the first of the order, "
                               f"{len(c['by_fallback'])} by a fallback with the slash, {len(c['wrong'])} wrong")
    c = checks["draw"]
    line("draw", c["ok"], f"{c['replayed']} slots' first producer replayed from the seed, "
                          f"{len(c['mismatched'])} mismatched")
    c = checks["chi_square"]
    line("chi-square", c["ok"] if c["valid"] else None,
         f"χ² = {c['statistic']:.2f}, df {c['df']}, p = {c['p_value']:.3f} over {c['slots']} slots (PASS at "
         f"p ≥ 0.01; smallest expectation {c['min_expected']}"
         + (")" if c["valid"] else ": below 5, too few slots to judge)"))
    for v, expected in c["expected"].items():
        print(f"{'':19}{names[v]} {v}  drawn first {c['observed'][v]:>4}  expected {expected:8.2f}")
    if "kill" in checks:
        c = checks["kill"]
        line("kill", c["ok"], f"node{c['node']} killed: block {c['next_block']} by the fallback "
                              f"{names[c['next_producer'].lower()]} after {c['seconds_to_next_block']} s "
                              f"(bound {c['bound_seconds']:.0f} s), slashed {c['penalty']['amount']} "
                              f"('{c['penalty']['reason']}'), {c['slots_settled_after']} slots settled after"
                              + ("" if "restarted" not in c else ", restarted and caught up" if c["restarted"]
                                 else f"; restart failed: {c['restart_error']}"))
