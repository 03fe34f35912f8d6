"""The layout of a data dir, in one place:

    chaindata/     LevelDB (blocks, state, indexes)
    genesis.json   the genesis this chain was initialised from (a copy, for operators)
    signer.key     this node's sealing key, hex, mode 0600 (generated for the devnet)
    keystore/      encrypted account keys (Web3 Secret Storage, as geth writes them)
    node.key       the libp2p identity (node/p2p/identity.py)
    txpool.journal transactions submitted here and not yet mined (node/txjournal.py)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def chaindata(self) -> Path:
        return self.root / "chaindata"

    @property
    def genesis_file(self) -> Path:
        return self.root / "genesis.json"

    @property
    def signer_key_file(self) -> Path:
        return self.root / "signer.key"

    @property
    def txpool_journal(self) -> Path:
        return self.root / "txpool.journal"

    @property
    def keystore(self) -> Path:
        return self.root / "keystore"

    def is_initialised(self) -> bool:
        return (self.chaindata / "CURRENT").exists()

    def create(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)


def write_secret(path: Path, text: str) -> None:
    """Write a key file readable by its owner only."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def read_private_key(path: Path) -> bytes:
    text = path.read_text().strip()
    key = bytes.fromhex(text[2:] if text.startswith("0x") else text)
    if len(key) != 32:
        raise ValueError(f"{path}: a private key is 32 bytes of hex")
    return key
