"""What the network layer is told at start: where to listen, whom to dial, which
chain it serves, and the limits that keep a hostile or slow peer from hurting us.

Defaults suit a blockchain of one block a second and bursts of hundreds of
transactions a second; tests shorten the intervals."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import multiaddr
from libp2p.peer.peerinfo import InvalidAddrError, PeerInfo, info_from_p2p_addr

STATIC_PEERS_FILE = "static-peers.json"


class NetworkConfigError(ValueError):
    """A listen address, bootnode or static peer that cannot be used."""


@dataclass(frozen=True)
class P2PConfig:
    datadir: Path
    """Holds `node.key` (this node's identity) and the optional `static-peers.json`."""
    chain_id: int
    genesis_hash: bytes
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/30303",)
    """TCP multiaddrs to listen on; port 0 picks a free port."""
    bootnodes: tuple[str, ...] = ()
    """Full multiaddrs (`/ip4/…/tcp/…/p2p/<peer id>`) dialled at start and redialled while disconnected."""

    max_peers: int = 50
    """Connections beyond this are refused by the libp2p swarm."""
    dial_timeout: float = 10.0
    handshake_timeout: float = 10.0
    """Admission check plus status exchange, from connect to counted peer."""
    request_timeout: float = 15.0
    """One sync or status request: open the stream, write, read the whole answer."""
    status_interval: float = 3.0
    """How often the status of every peer is asked again, so a node that missed
    gossip notices it is behind even when nothing new arrives."""
    status_failures_before_disconnect: int = 3
    redial_initial: float = 0.5
    redial_max: float = 30.0
    """Redial backoff doubles from `redial_initial` up to this cap."""

    sync_blocks_per_request: int = 128
    sync_import_batch: int = 32
    """Blocks imported per crossing into the node's loop: bigger is faster, smaller keeps RPC responsive."""

    gossip_heartbeat: int = 1
    """Seconds between gossipsub heartbeats (mesh upkeep, IHAVE gossip). The library default is 120."""
    gossip_validation_timeout: float = 10.0
    tx_batch_delay: float = 0.02
    """Transactions published within this many seconds go out as one gossip message."""
    tx_batch_max: int = 500

    penalty_invalid_block: float = 10.0
    penalty_invalid_transaction: float = 1.0
    penalty_ban_threshold: float = 30.0
    """A peer whose penalty score reaches this is disconnected and banned: 3 invalid blocks
    in quick succession, or 30 invalid transactions."""
    penalty_half_life: float = 60.0
    ban_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not 1 <= self.sync_blocks_per_request <= 128:
            raise NetworkConfigError("sync_blocks_per_request must be 1..128 (peers answer at most 128 blocks)")
        if self.gossip_heartbeat < 1:
            raise NetworkConfigError("gossip_heartbeat is whole seconds, at least 1")
        if not 1 <= self.tx_batch_max <= 1000:
            raise NetworkConfigError("tx_batch_max must be 1..1000 (peers accept at most 1000 per message)")
        durations = ("dial_timeout", "handshake_timeout", "request_timeout", "status_interval", "redial_initial",
                     "redial_max", "gossip_validation_timeout", "penalty_half_life")
        for name in durations:
            if getattr(self, name) <= 0:
                raise NetworkConfigError(f"{name} must be positive")

    def static_peers_file(self) -> Path:
        return Path(self.datadir) / STATIC_PEERS_FILE


def parse_peer_address(address: str) -> PeerInfo:
    """A full multiaddr ending in `/p2p/<peer id>`, as a dialable PeerInfo."""
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(address))
    except (InvalidAddrError, ValueError, TypeError) as exc:
        raise NetworkConfigError(f"{address!r} is not a multiaddr ending in /p2p/<peer id>: {exc}") from exc


def parse_listen_address(address: str) -> multiaddr.Multiaddr:
    try:
        parsed = multiaddr.Multiaddr(address)
    except (ValueError, TypeError) as exc:
        raise NetworkConfigError(f"{address!r} is not a multiaddr: {exc}") from exc
    names = [protocol.name for protocol in parsed.protocols()]
    if len(names) != 2 or names[0] not in ("ip4", "ip6") or names[1] != "tcp":
        raise NetworkConfigError(f"listen address {address!r} must be /ip4/<addr>/tcp/<port> or /ip6/<addr>/tcp/<port>")
    return parsed


def load_static_peers(path: Path) -> tuple[str, ...]:
    """`static-peers.json`: a JSON list of full multiaddrs; a missing file means none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return ()
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NetworkConfigError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(document, list) or not all(isinstance(entry, str) for entry in document):
        raise NetworkConfigError(f"{path}: expected a JSON list of multiaddr strings")
    for entry in document:
        parse_peer_address(entry)
    return tuple(document)
