"""Entry point of the `gridnode` command: builds the argument parser from the
sub-command modules and turns expected failures into one readable line."""
from __future__ import annotations

import argparse
import sys

from cli import account, keys, localnet, logs, sim, start, tx
from cli.errors import CommandError


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
    sim.add_parser(commands, load_experiments="sim" in argv)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logs.configure(args.log_level, args.log_format)
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
