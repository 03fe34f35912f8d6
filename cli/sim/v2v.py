"""`gridnode sim v2v`: flags and summary table of `market.experiments.v2v`; with `--live` a PoSOC
localnet with EV agents as processes (`market.experiments.v2v_live`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cli.errors import CommandError
from market.experiments.v2v import Settings, run as experiment
from market.experiments.v2v_live import LiveSettings

DEFAULTS = Settings()
LIVE = LiveSettings()


def _selfish(text: str) -> int | str:
    if text == "first":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an EV index or 'first', got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--evs", type=int, default=None,
                        help=f"EVs in the federation (default {DEFAULTS.evs}; --live: {LIVE.evs}, at most 19)")
    parser.add_argument("--windows", type=int, default=DEFAULTS.windows,
                        help=f"24-hour training windows (default {DEFAULTS.windows})")
    parser.add_argument("--stays", type=int, default=DEFAULTS.stays,
                        help=f"simulated stays each EV learns from per window (default {DEFAULTS.stays})")
    parser.add_argument("--test-stays", type=int, default=DEFAULTS.test_stays,
                        help=f"test stays per EV (default {DEFAULTS.test_stays})")
    parser.add_argument("--live", action="store_true",
                        help="run a PoSOC localnet with one EV agent process per EV trading on the V2VMarket and "
                             "learning federated through the chain, and check it from the chain")
    parser.add_argument("--nodes", type=int, default=LIVE.nodes, help=f"--live: validator nodes (default {LIVE.nodes})")
    parser.add_argument("--days", type=int, default=LIVE.days, help=f"--live: 24-hour windows to trade (default {LIVE.days})")
    parser.add_argument("--hour-seconds", type=int, default=LIVE.hour_seconds,
                        help=f"--live: seconds in one chain hour (default {LIVE.hour_seconds}; a day is 24 of them)")
    parser.add_argument("--selfish", type=_selfish, default=None, metavar="K|first",
                        help="--live: EV K (0-based) skips the first mining fee it owes, is confiscated and barred, "
                             "then pays; 'first': whichever EV owes a fee first does")
    parser.add_argument("--pretrain", type=int, default=LIVE.pretrain, metavar="WINDOWS",
                        help="--live: start every agent from a model trained off chain for this many federated "
                             "windows (default 0: a fresh model)")
    parser.add_argument("--grace-hours", type=int, default=None,
                        help="--live: hours after a window before an unpaid fee is confiscated (default one window)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="--live: a new directory for the localnet and the agents' logs (default a temporary one)")


def run(args: argparse.Namespace, progress: bool) -> dict:
    if args.live:
        return _run_live(args)
    settings = Settings(evs=args.evs or DEFAULTS.evs, windows=args.windows, stays=args.stays,
                        test_stays=args.test_stays, seed=args.seed)
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


def _run_live(args: argparse.Namespace) -> dict:
    from market.experiments.v2v_live import run_live

    settings = LiveSettings(nodes=args.nodes, evs=args.evs or LIVE.evs, days=args.days, hour_seconds=args.hour_seconds,
                            seed=args.seed, selfish=args.selfish, pretrain=args.pretrain, grace_hours=args.grace_hours,
                            directory=args.dir)
    try:
        settings.validate()
        result = run_live(settings, plot_path=args.plot)
    except (ValueError, RuntimeError) as error:
        raise CommandError(f"live run failed: {error}") from None
    if not args.json:
        print_live(result)
        if not result["passed"]:
            raise CommandError("live checks failed (see above)")
    return result


def _names(values: list, fmt: str) -> str:
    return " ".join(format(v, fmt) for v in values)


def print_live(result: dict) -> None:
    s, data, checks = result["settings"], result["collected"], result["checks"]
    n = s["evs"]
    print(f"\nlive PoSOC: {s['nodes']} nodes, {n} EV agents, {s['days']} days of {s['hour_seconds']} s hours in "
          f"{result['seconds']:.0f} s; windows {result['first_window']}..{result['first_window'] + s['days'] - 1}; "
          + (f"agents started from a model pretrained off chain for {s['pretrain']} windows" if s["pretrain"]
             else "agents started from a fresh model"))
    header = " ".join(f"{'EV' + str(k):>7}" for k in range(n))
    for day in data["days"]:
        b, v = day["bought_kwh"], day["v2v_bought_kwh"]
        print(f"\nday (window) {day['window']}: mLAG EV{day['mlag']}" if day["mlag"] is not None
              else f"\nday (window) {day['window']}: no mLAG drawn for it", end="")
        print(f"; next window's mLAG EV{day['next_mlag']}" if day["next_mlag"] is not None else "")
        print(f"  bought off/mid/on-peak {b['off']:.1f} / {b['mid']:.1f} / {b['on']:.1f} kWh "
              f"(V2V {v['off']:.1f} / {v['mid']:.1f} / {v['on']:.1f}); sold on-peak {day['sold_kwh']['on']:.1f} kWh "
              f"(V2V {day['v2v_sold_kwh']['on']:.1f}), off/mid {day['sold_kwh']['off']:.1f} / {day['sold_kwh']['mid']:.1f}")
        print(f"  {'':<16}{header}")
        print(f"  {'score (Wh)':<16}{_names(day['scores'], '>7')}")
        if day["scores_on_chain"] is not None:
            print(f"  {'  on chain':<16}{_names(day['scores_on_chain'], '>7')}")
        print(f"  {'realised (¢)':<16}{_names(day['profit_cents'], '>7.1f')}")
        print(f"  {'  at p_v2v (¢)':<16}{_names(day['v2v_price_profit_cents'], '>7.1f')}")
        print(f"  {'  V2V cash (¢)':<16}{_names(day['v2v_cash_cents'], '>7.1f')}")
        print(f"  fees charged {day['fees_charged']} ¢ to EV{day['fee_mlag']}, paid {day['fees_paid']} ¢, "
              f"confiscated {day['fees_confiscated']} ¢")
    t = data["totals"]
    print(f"\nover the run: bought off/mid/on-peak {t['bought_kwh']['off']:.1f} / {t['bought_kwh']['mid']:.1f} / "
          f"{t['bought_kwh']['on']:.1f} kWh, sold {t['sold_kwh']['off']:.1f} / {t['sold_kwh']['mid']:.1f} / "
          f"{t['sold_kwh']['on']:.1f} kWh; sold on-peak {t['sold_on_peak_share']}, bought outside on-peak "
          f"{t['bought_outside_on_peak_share']}; score vs on-peak discharge r = {t['score_vs_on_peak_discharge_r']}; "
          f"fees paid {t['fees_paid_cents']} ¢, confiscated {t['fees_confiscated_cents']} ¢")
    base = result["baseline"]
    print("\nfederated vs no federation (same days, same start; MDP profit = cash less the energy's off-peak value):")
    print(f"  live federated {base['live_federated']['mdp_profit_per_stay']} ¢/stay; off chain over the same days: "
          f"federated {base['federated_off_chain']['mdp_profit_per_stay']}, no federation "
          f"{base['no_federation']['mdp_profit_per_stay']} ¢/stay")
    print("  greedy play on 200 test stays (¢/stay): " + ", ".join(
        f"{name} {value}" for name, value in base["greedy_test_profit_per_stay"].items()))

    def line(name: str, ok: bool, text: str) -> None:
        print(f"  {'PASS' if ok else 'FAIL'}  {name:<11} {text}")

    print()
    c = checks["agreement"]
    line("agreement", c["ok"], f"{c['nodes']} nodes identical at every height 0..{c['compared_up_to']}"
         + (f"; differ at {c['differing_heights']}" if c["differing_heights"] else ""))
    c = checks["fills"]
    line("fills", c["ok"], f"{c['between_evs']} V2V fills between EVs, {c['kwh']} kWh")
    c = checks["reports"]
    line("reports", c["ok"], f"{c['on_chain']} charger reports on chain, {c['failed']} failed")
    c = checks["federation"]
    line("federation", c["ok"], f"{c['commit_txs']} commitments, {c['aggregate_txs']} aggregates; per round sent "
         f"{c['commitments_sent']}, included {c['included']}, every node's check {c['checked']}"
         + (f"; errors {c['errors']}" if c["errors"] else ""))
    c = checks["fees"]
    line("fees", c["ok"], f"{c['charged']} charged, {c['paid']} paid ({c['paid_cents']} ¢), "
         f"{c['confiscated_cents']} ¢ confiscated")
    if "selfish" in checks:
        c = checks["selfish"]
        line("selfish", c["ok"], c.get("reason") or (
            f"EV{c['ev']} skipped window {c['skipped']}: confiscated {c['confiscated_cents']} ¢ in block "
            f"{c['confiscated_block']} (barred: {c['barred_after_confiscation']}), {len(c['refused_orders'])} orders "
            f"refused, settled in block {c['settled_block']} (barred after: {c['barred_after_settling']})"))
    c = checks["agents"]
    line("agents", c["ok"], f"exit codes {c['exit_codes']}")
