"""Account keys on disk in the Web3 Secret Storage format (what geth's
keystore holds), encrypted with a password by eth-account."""
from __future__ import annotations

import json
import time
from pathlib import Path

from eth_account import Account

from node.datadir import write_secret
from vm.types import Address


def keystore_files(keystore: Path) -> list[Path]:
    return sorted(p for p in keystore.glob("UTC--*") if p.is_file()) if keystore.exists() else []


def keystore_addresses(keystore: Path) -> list[Address]:
    addresses = []
    for path in keystore_files(keystore):
        try:
            addresses.append(Address.from_hex(json.loads(path.read_text())["address"]))
        except (ValueError, KeyError, json.JSONDecodeError):
            continue  # not a key file; `gridnode account list` reports it
    return addresses


def store_key(keystore: Path, private_key: bytes, password: str) -> Path:
    """Encrypt and write a key; the file name is geth's `UTC--<time>--<address>`."""
    keystore.mkdir(parents=True, exist_ok=True)
    encrypted = Account.encrypt(private_key, password)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime())
    path = keystore / f"UTC--{stamp}.{time.time_ns() % 10**9:09d}Z--{encrypted['address'].lower()}"
    write_secret(path, json.dumps(encrypted))
    return path


def load_key(path: Path, password: str) -> bytes:
    return bytes(Account.decrypt(json.loads(path.read_text()), password))
