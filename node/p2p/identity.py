"""This node's libp2p identity: an ed25519 key kept in `DATADIR/node.key`.

The key is what peers admit (genesis `nodes`, the on-chain registry), so it must
survive restarts and never leak: it is written once, atomically, mode 0600, in
libp2p's protobuf private-key encoding (the format go-libp2p and py-libp2p read).
Nothing here starts a host, so the CLI can print a peer id and `gridnode localnet`
can put peer ids into a genesis before any node runs."""
from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

NODE_KEY_FILE = "node.key"

log = logging.getLogger("gridnode.p2p")


class IdentityError(ValueError):
    """The node key file exists but cannot be used."""


@dataclass(frozen=True)
class NodeIdentity:
    key_pair: KeyPair
    peer_id: str
    """Base58 libp2p peer id (`12D3KooW…`), as genesis and admin RPC name nodes."""


def node_key_path(datadir: Path) -> Path:
    return Path(datadir) / NODE_KEY_FILE


def peer_id_of(key_pair: KeyPair) -> str:
    return ID.from_pubkey(key_pair.public_key).to_base58()


def load_identity(datadir: Path) -> NodeIdentity:
    """Read `DATADIR/node.key`; raises FileNotFoundError or IdentityError."""
    path = node_key_path(datadir)
    data = path.read_bytes()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("node key %s is readable by others (mode %o); chmod 600 it", path, mode)
    try:
        private_key = deserialize_private_key(data)
        key_pair = KeyPair(private_key, private_key.get_public_key())
    except Exception as exc:  # the library raises assorted types for bad bytes
        raise IdentityError(f"{path} is not a libp2p private key: {exc}") from exc
    return NodeIdentity(key_pair, peer_id_of(key_pair))


def load_or_create_identity(datadir: Path) -> NodeIdentity:
    """The node's identity, generating and persisting a new ed25519 key on first use."""
    path = node_key_path(datadir)
    if path.exists():
        return load_identity(datadir)
    key_pair = create_new_key_pair()
    _write_atomically(path, key_pair.private_key.serialize())
    log.info("created node key %s", path)
    return NodeIdentity(key_pair, peer_id_of(key_pair))


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a 0600 temporary file and rename, so a crash never leaves half a key;
    `link` rather than `replace` so two processes racing to create keep the first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise IdentityError(f"{path} was created concurrently; start again") from None
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
