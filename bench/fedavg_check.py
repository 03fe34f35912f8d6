#!/usr/bin/env python3
"""What checking the mLAG's aggregate costs (PoSOC, eq. 4.19): for N actor-critic updates, the
time to decode them and compute FedAvg's hash in fixed point (what every node does after an
aggregate, and inside the transition for a challenge), the challenge transaction's bytes against
the 128 KiB transaction bound, and the gas it is charged.

    python bench/fedavg_check.py [--updates 1 5 10 15] [--repeat 20] [--json]

Prints per N: update bytes, challenge bytes, intrinsic gas, p50/p95 ms of the check."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]  # the repository's `market`, not bench/market.py

from consensus.posoc.engine import MAX_CHALLENGE_BYTES, challenge  # noqa: E402
from consensus.rules import fedavg  # noqa: E402
from market.economics import actor_critic as ac  # noqa: E402
from market.economics.federated import to_model  # noqa: E402
from market.economics.v2v import ACTIONS, OBSERVATION_SIZE  # noqa: E402
from vm.gas import intrinsic_gas  # noqa: E402
from vm.limits import MAX_TRANSACTION_SIZE  # noqa: E402


def updates(count: int) -> list[bytes]:
    return [to_model(ac.init_params(OBSERVATION_SIZE, len(ACTIONS), ac.Hyper().hidden,
                                             np.random.default_rng(k))).encode() for k in range(count)]


def measure(count: int, repeat: int) -> dict:
    blobs = updates(count)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fedavg.aggregate_hash(blobs)
        times.append((time.perf_counter() - started) * 1000)
    data = challenge(1, blobs)
    times.sort()
    return {"updates": count, "update_bytes": len(blobs[0]), "included_bytes": sum(map(len, blobs)),
            "within_bound": sum(map(len, blobs)) <= MAX_CHALLENGE_BYTES, "challenge_bytes": len(data),
            "transaction_bound": MAX_TRANSACTION_SIZE, "intrinsic_gas": intrinsic_gas(data),
            "check_ms_p50": round(statistics.median(times), 2),
            "check_ms_p95": round(times[min(len(times) - 1, int(0.95 * len(times)))], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, nargs="+", default=[1, 5, 10, 15])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [measure(n, args.repeat) for n in args.updates]
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'updates':>7} {'bytes each':>10} {'included':>9} {'challenge tx data':>18} {'gas':>9} "
          f"{'check p50 ms':>12} {'p95 ms':>7}")
    for r in rows:
        flag = "" if r["within_bound"] else "  (over the aggregate bound: refused)"
        print(f"{r['updates']:>7} {r['update_bytes']:>10} {r['included_bytes']:>9} {r['challenge_bytes']:>18} "
              f"{r['intrinsic_gas']:>9} {r['check_ms_p50']:>12} {r['check_ms_p95']:>7}{flag}")


if __name__ == "__main__":
    main()
