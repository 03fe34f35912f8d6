"""PoEG settlement certificate timings (issue 11): propose (producer, HiGHS + exact dual repair)
and verify (validator, integers only) for one coalition of n sellers × n buyers.

    python bench/poeg_certificate.py [--sizes 10,50,200,500] [--exact-max 50] [--repeat 3] [--json]

Instances come from the simulation's community generator (normal profiles, 20 km × 20 km,
faithful per-km loss model): the first n sellers and n buyers of a community large enough to
hold them. 500 × 500 is the 1,000-prosumer bar of issue 11 (verify ≤ 1 s, propose ≤ 10 s).
"exact" is the pure-integer fallback (successive shortest paths), timed up to --exact-max.
Times are the best of --repeat runs, in seconds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]  # the repository's `market`, not bench/market.py

from consensus.poeg.certificate import encode, propose, verify  # noqa: E402
from market.economics.community import random_community  # noqa: E402
from consensus.rules.coalition_lp import coalition_instance  # noqa: E402


def instance(side: int) -> tuple[list[int], list[int], list[list[int]]]:
    """n sellers × n buyers from one synthetic community (about a third of prosumers sell)."""
    community = random_community(5 * side, "normal", np.random.default_rng(side))
    sellers = [i for i, e in enumerate(community.balance_wh) if e > 0][:side]
    buyers = [j for j, e in enumerate(community.balance_wh) if e < 0][:side]
    if len(sellers) < side or len(buyers) < side:
        raise SystemExit(f"community of {5 * side} has too few sellers or buyers for {side} × {side}")
    chosen = coalition_instance(community, sellers + buyers)
    return list(chosen.surplus), list(chosen.deficit), [list(row) for row in chosen.gains]


def best(repeat: int, run) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--sizes", default="10,50,200,500", help="n for n sellers × n buyers (comma separated)")
    parser.add_argument("--exact-max", type=int, default=50, help="largest n to time the exact integer method at")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is reported")
    parser.add_argument("--json", action="store_true", help="one JSON object per size instead of a table")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if not args.json:
        print(f"{'sellers×buyers':>14} {'propose s':>9} {'exact s':>8} {'verify ms':>9} {'entries':>7} "
              f"{'bytes':>6} {'saved kWh':>9}", flush=True)
    for side in sizes:
        data = instance(side)
        propose_s, certificate = best(args.repeat, lambda: propose(*data))
        verify_s, _ = best(args.repeat, lambda: verify(certificate, *data))
        exact_s = None
        if side <= args.exact_max:
            exact_s, exact = best(args.repeat, lambda: propose(*data, method="exact"))
            assert exact.objective == certificate.objective
        row = {"sellers": side, "buyers": side, "propose_s": round(propose_s, 4), "verify_s": round(verify_s, 4),
               "exact_s": None if exact_s is None else round(exact_s, 4), "entries": len(certificate.plan),
               "bytes": len(encode(certificate)), "objective_ppm_wh": certificate.objective}
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            exact_text = "-" if exact_s is None else f"{exact_s:.3f}"
            print(f"{side:>6} × {side:<5} {propose_s:>9.3f} {exact_text:>8} {verify_s * 1000:>9.1f} "
                  f"{len(certificate.plan):>7} {row['bytes']:>6} {certificate.objective / 1e9:>9.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
