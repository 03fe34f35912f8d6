"""`gridnode keys`: make (or show) a data dir's signer key and node key, and
print the public halves an operator shares for the genesis file."""
from __future__ import annotations

import argparse
import secrets
from pathlib import Path

from cli.errors import CommandError
from cli.start import DEFAULT_DATADIR
from consensus.engine import Signer
from node.datadir import DataDir, read_private_key, write_secret
from node.p2p.identity import IdentityError, load_or_create_identity


def add_parsers(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "keys", help="create or show this node's signer key and node key",
        description="Create DATADIR/signer.key (block sealing) and DATADIR/node.key (libp2p identity) "
                    "if missing, and print the signer address and peer id to put in a genesis file.")
    parser.add_argument("--datadir", default=DEFAULT_DATADIR, help=f"data directory (default {DEFAULT_DATADIR})")
    parser.set_defaults(func=run_keys)


def run_keys(args: argparse.Namespace) -> int:
    datadir = DataDir(Path(args.datadir))
    datadir.create()
    if not datadir.signer_key_file.exists():
        write_secret(datadir.signer_key_file, secrets.token_bytes(32).hex() + "\n")
    try:
        signer = Signer(read_private_key(datadir.signer_key_file))
        identity = load_or_create_identity(datadir.root)
    except (OSError, ValueError, IdentityError) as exc:
        raise CommandError(f"cannot read the keys in {datadir.root}: {exc}") from None
    print(f"signer address: {signer.address.to_checksum()}   ({datadir.signer_key_file})")
    print(f"node peer id:   {identity.peer_id}   ({datadir.root / 'node.key'})")
    return 0
