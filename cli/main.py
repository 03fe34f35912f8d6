"""Entry point of the `gridnode` command: builds the argument parser from the
sub-command modules and turns expected failures into one readable line."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Callable

from cli import account, agent, keys, localnet, logs, market, sim, start, testnet, tx
from cli.errors import CommandError

log = logging.getLogger("gridnode.cli")


@dataclass(frozen=True)
class ProcessLimit:
    """A process-wide interpreter limit that bounds what hostile input can make Python do."""
    name: str
    get: Callable[[], int]
    set: Callable[[int], None]
    sane: int


PROCESS_LIMITS = (
    ProcessLimit("recursion limit", sys.getrecursionlimit, sys.setrecursionlimit, 1000),
    # CPython starts every process at 1000. py_ecc (imported by eth-keyfile) raises it to 100,000,
    # which lets recursion in C code (a JSON parser, repr) overflow the C stack: a segfault, not a
    # RecursionError.
    ProcessLimit("int max str digits", sys.get_int_max_str_digits, sys.set_int_max_str_digits,
                 sys.flags.int_max_str_digits if sys.flags.int_max_str_digits != -1
                 else sys.int_info.default_max_str_digits),
    # CPython's 4,300 (or what -X int_max_str_digits set): without it one long number in a request
    # costs quadratic time to convert.
)


def restore_process_limits() -> list[str]:
    """Put back every limit an imported module changed; one line per limit that was changed."""
    changed = []
    for limit in PROCESS_LIMITS:
        value = limit.get()
        if value != limit.sane:
            limit.set(limit.sane)
            changed.append(f"an imported module changed the {limit.name} to {value}; restored {limit.sane}")
    return changed


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridnode",
        description="A permissioned blockchain node for peer-to-peer electricity trading.",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="log verbosity (default info)")
    parser.add_argument("--log-format", default="text", choices=["text", "json"],
                        help="log line format (default text)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    start.add_parsers(commands)
    account.add_parsers(commands)
    tx.add_parsers(commands)
    keys.add_parsers(commands)
    localnet.add_parsers(commands)
    testnet.add_parsers(commands)
    market.add_parsers(commands)
    agent.add_parsers(commands)
    sim.add_parser(commands, load_experiments="sim" in argv)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)  # after every import a command needs
    logs.configure(args.log_level, args.log_format)
    for change in restore_process_limits():
        log.info(change)
    try:
        return args.func(args) or 0
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly, as Unix tools do
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
