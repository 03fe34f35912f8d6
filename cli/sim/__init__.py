"""`gridnode sim …`: reproduce the papers' experiments on the market's own code.

The experiments live in `market.experiments.<name>` and take plain arguments. Each
command-line front end here, `cli.sim.<name>`, exposes `add_arguments(parser)` for the
experiment's own flags and `run(args, progress) -> dict`, which calls the experiment and,
unless `args.json`, prints its summary table. This module owns only the flags every
experiment shares.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys

EXPERIMENTS = {
    "stackelberg": "Elecoin pricing game and DMA-UBRL learner (paper 000, Figs. 3-4)",
    "households": "Household non-cooperative trading game (paper 001)",
    "coalition": "PoEG coalition formation and loss saving (paper 003 ch. 3, Fig. 3.9)",
    "v2v": "Federated EV V2V trading with PoSOC (paper 003 ch. 4)",
    "pow-mining": "PoW Poisson mining model, Fig. 4(e), and a live PoW localnet (paper 000)",
    "vpp": "VPP cases I-IV, running schemes per case, Fig. 5; --live on a localnet (paper 004)",
}


def add_parser(subparsers: argparse._SubParsersAction, load_experiments: bool = True) -> None:
    """Register `sim`; the experiments' own flags are loaded only when `sim` is
    the command, so other commands never import the numerical stack."""
    sim = subparsers.add_parser("sim", help="reproduce the papers' experiments",
                                description="Reproduce the papers' experiments on the same market code the chain runs.")
    kinds = sim.add_subparsers(dest="experiment", metavar="EXPERIMENT", required=True)
    for name, summary in EXPERIMENTS.items():
        parser = kinds.add_parser(name, help=summary, description=summary)
        parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout instead of tables")
        parser.add_argument("--plot", metavar="FILE.png", help="write the experiment's figure to this PNG file")
        if load_experiments:
            importlib.import_module(_module(name)).add_arguments(parser)
        parser.set_defaults(func=run)


def _module(experiment: str) -> str:
    return f"{__name__}.{experiment.replace('-', '_')}"


def run(args: argparse.Namespace) -> int:
    front_end = importlib.import_module(_module(args.experiment))
    result = front_end.run(args, progress=not args.json and sys.stderr.isatty())
    if args.json:
        json.dump(result, sys.stdout, sort_keys=True)
        sys.stdout.write("\n")
    return 0


def integers(text: str) -> list[int]:
    """An argparse type: comma-separated integers."""
    try:
        return [int(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def floats(text: str) -> list[float]:
    """An argparse type: comma-separated numbers."""
    try:
        return [float(v) for v in text.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
