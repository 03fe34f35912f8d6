"""`gridnode testnet`: fault injection as a command (manifest.py, load.py, runner.py, checker.py)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.errors import CommandError


def add_parsers(commands: argparse._SubParsersAction) -> None:
    from cli.testnet.manifest import ENGINES

    parser = commands.add_parser(
        "testnet", help="run a local network under load and faults, and check its invariants",
        description="Start a localnet from a TOML manifest, send transfers while a timeline of perturbations "
                    "runs (kill, stop, wipe, restart, pause, resume, partition, heal, clock skew, packet loss, byzantine modes), then check safety, that no "
                    "acknowledged transaction was lost, nonces, conservation of supply, liveness and the evidence against byzantine nodes. Exits 1 if "
                    "an invariant fails.")
    sub = parser.add_subparsers(dest="testnet_command", metavar="ACTION", required=True)
    run = sub.add_parser("run", help="run one manifest (examples in testnets/)",
                         description="Run the manifest's network, load and timeline; print the invariant table.")
    run.add_argument("manifest", type=Path, help="a TOML manifest (see testnets/poa.toml)")
    _common(run)
    run.set_defaults(func=_run)
    soak = sub.add_parser("soak", help="a randomised timeline of faults for a given time, reproduced by its seed",
                          description="Run a generated manifest: one fault at a time (a minority killed, stopped "
                                      "or paused, or a partition), each undone after 4–12 s, for --seconds.")
    soak.add_argument("--engine", default="poa", choices=ENGINES, help="consensus engine (default poa)")
    soak.add_argument("--nodes", type=int, default=4, help="nodes (default 4)")
    soak.add_argument("--seconds", type=float, default=1800, help="how long to run (default 1800: 30 min)")
    soak.add_argument("--seed", type=int, default=0, help="the schedule's and the load's seed (default 0)")
    soak.add_argument("--rate", type=float, default=4.0, help="transfers per second (default 4)")
    soak.add_argument("--topology", default="loopback", choices=("loopback", "netns"),
                      help="netns: each node its own host (root); partitions by nftables, and packet loss "
                           "as a fault (default loopback)")
    soak.add_argument("--print-manifest", action="store_true", help="print the generated timeline and exit")
    _common(soak)
    soak.set_defaults(func=_soak)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=None,
                        help="a new directory for the nodes and the history, kept (default a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (its path is printed)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout (progress on stderr)")


def _run(args: argparse.Namespace) -> int:
    from cli.testnet.manifest import ManifestError, load

    try:
        manifest = load(args.manifest)
    except ManifestError as error:
        raise CommandError(str(error)) from None
    return _execute(manifest, args)


def _soak(args: argparse.Namespace) -> int:
    from cli.testnet.manifest import ManifestError, soak

    try:
        manifest = soak(args.engine, args.nodes, args.seconds, args.seed, args.rate, args.topology)
    except ManifestError as error:
        raise CommandError(str(error)) from None
    if args.print_manifest:
        for p in manifest.perturbations:
            print(f"t={p.at:7.1f} s  {p.describe()}")
        return 0
    return _execute(manifest, args)


def _execute(manifest, args: argparse.Namespace) -> int:
    import sys
    import tempfile

    from cli.testnet.runner import run

    directory = args.dir
    if directory is None and args.keep:
        directory = Path(tempfile.mkdtemp(prefix="gridnode-testnet-"))
    say = (lambda text: print(text, file=sys.stderr, flush=True)) if args.json else (lambda text: print(text, flush=True))
    try:
        result = run(manifest, directory, say)
    except (RuntimeError, ValueError) as error:
        raise CommandError(f"testnet failed: {error}") from None
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{'passed' if result['passed'] else 'FAILED'}: {manifest.name} in {result['seconds']} s; load "
              + ", ".join(f"{k} {v}" for k, v in result["load"].items())
              + (f"; kept {result['directory']}" if directory is not None else ""))
    return 0 if result["passed"] else 1
