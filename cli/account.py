"""`gridnode account new | list | import`: keys in the data dir's keystore."""
from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from eth_account import Account

from cli.errors import CommandError
from cli.start import DEFAULT_DATADIR
from node.datadir import DataDir, read_private_key
from node.keystore import keystore_addresses, keystore_files, store_key


def add_parsers(commands: argparse._SubParsersAction) -> None:
    account = commands.add_parser("account", help="manage account keys in the data dir's keystore",
                                  description="Manage encrypted account keys (Web3 Secret Storage, as geth).")
    actions = account.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, summary in (("new", "create a new account"), ("list", "list keystore accounts"),
                          ("import", "import a hex private key file")):
        parser = actions.add_parser(name, help=summary, description=summary)
        parser.add_argument("--datadir", default=DEFAULT_DATADIR, help=f"data directory (default {DEFAULT_DATADIR})")
        if name != "list":
            parser.add_argument("--password-file", type=Path, help="file whose first line is the password "
                                                                   "(prompted for when omitted)")
        if name == "import":
            parser.add_argument("keyfile", type=Path, help="file holding the private key as hex")
        parser.set_defaults(func={"new": run_new, "list": run_list, "import": run_import}[name])


def _password(args: argparse.Namespace) -> str:
    if args.password_file:
        try:
            lines = args.password_file.read_text().splitlines()
            return lines[0] if lines else ""
        except OSError as exc:
            raise CommandError(f"cannot read password file: {exc}") from None
    if not sys.stdin.isatty():
        raise CommandError("no terminal to ask for a password: pass --password-file")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Repeat password: "):
        raise CommandError("passwords do not match")
    return password


def run_new(args: argparse.Namespace) -> int:
    password = _password(args)
    created = Account.create()
    path = store_key(DataDir(Path(args.datadir)).keystore, bytes(created.key), password)
    print(f"Address: {created.address}\nKey file: {path}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    try:
        key = read_private_key(args.keyfile)
    except (OSError, ValueError) as exc:
        raise CommandError(f"cannot read key: {exc}") from None
    keystore = DataDir(Path(args.datadir)).keystore
    address = Account.from_key(key).address
    if any(a.to_checksum() == address for a in keystore_addresses(keystore)):
        raise CommandError(f"account {address} is already in the keystore")
    path = store_key(keystore, key, _password(args))
    print(f"Address: {address}\nKey file: {path}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    keystore = DataDir(Path(args.datadir)).keystore
    files = keystore_files(keystore)
    if not files:
        print(f"no accounts in {keystore}")
    for index, (address, path) in enumerate(zip(keystore_addresses(keystore), files)):
        print(f"Account #{index}: {address.to_checksum()} keystore://{path}")
    return 0
