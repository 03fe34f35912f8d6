"""Who is connected, who counts as a peer, who misbehaved.

A connection becomes a *peer* only after the status handshake: admitted key, same
chain id, same genesis. The table is changed only on the trio thread; the node's
threads read `snapshot()`, `count()` and `wait_for_count()`, which use an immutable
copy rebuilt under a lock after every change, so they never wait on the network.

Penalties are points that halve every `penalty_half_life` seconds; a peer reaching
`penalty_ban_threshold` is banned (disconnected, refused and not redialled) for
`ban_seconds`. They are kept per peer id, so reconnecting does not clear them."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import trio
from libp2p.abc import INetConn

from node.p2p.config import P2PConfig
from node.p2p.port import ChainStatus

log = logging.getLogger("gridnode.p2p")


@dataclass(eq=False)
class Peer:
    peer_id: str
    direction: str
    """"inbound" (it dialled us) or "outbound" (we dialled it)."""
    remote_address: str
    connection: INetConn
    """The connection we track; a second one to the same peer replaces it only if this one closes."""
    status: ChainStatus | None = None
    counted: bool = False
    """Handshake done and not being disconnected."""
    status_failures: int = 0
    refreshes_without_gossip: int = 0
    gone: trio.Event = field(default_factory=trio.Event)


@dataclass
class _Penalty:
    score: float
    at: float


class PeerTable:
    def __init__(self, config: P2PConfig) -> None:
        self._config = config
        self._peers: dict[str, Peer] = {}
        self._penalties: dict[str, _Penalty] = {}
        self._bans: dict[str, float] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._snapshot: tuple[dict, ...] = ()

    # -- connections (trio thread) --------------------------------------------
    def add(self, peer_id: str, direction: str, remote_address: str, connection: INetConn) -> Peer:
        previous = self._peers.get(peer_id)
        if previous is not None:
            previous.gone.set()
        peer = Peer(peer_id, direction, remote_address, connection)
        self._peers[peer_id] = peer
        self._publish()
        return peer

    def clear(self) -> None:
        """Forget every connection (the network has stopped)."""
        for peer in self._peers.values():
            peer.gone.set()
        self._peers.clear()
        self._publish()

    def get(self, peer_id: str) -> Peer | None:
        return self._peers.get(peer_id)

    def remove(self, peer: Peer) -> None:
        if self._peers.get(peer.peer_id) is peer:
            del self._peers[peer.peer_id]
            self._publish()
        peer.gone.set()

    def mark_counted(self, peer: Peer, status: ChainStatus) -> bool:
        """The handshake succeeded; False if the peer has gone meanwhile."""
        if self._peers.get(peer.peer_id) is not peer or peer.gone.is_set():
            return False
        peer.status = status
        peer.counted = True
        peer.status_failures = 0
        self._publish()
        return True

    def uncount(self, peer_id: str) -> None:
        peer = self._peers.get(peer_id)
        if peer is not None and peer.counted:
            peer.counted = False
            self._publish()

    def update_status(self, peer_id: str, status: ChainStatus) -> None:
        peer = self._peers.get(peer_id)
        if peer is not None and peer.counted:
            peer.status = status
            peer.status_failures = 0
            self._publish()

    def counted(self) -> list[Peer]:
        return [peer for peer in self._peers.values() if peer.counted]

    def is_counted(self, peer_id: str) -> bool:
        peer = self._peers.get(peer_id)
        return peer is not None and peer.counted

    # -- misbehaviour (trio thread) ---------------------------------------------
    def penalize(self, peer_id: str, points: float) -> float:
        """Add penalty points; returns the decayed score after adding them."""
        now = time.monotonic()
        penalty = self._penalties.get(peer_id)
        score = points if penalty is None else self._decayed(penalty, now) + points
        self._penalties[peer_id] = _Penalty(score, now)
        return score

    def score(self, peer_id: str) -> float:
        penalty = self._penalties.get(peer_id)
        return 0.0 if penalty is None else self._decayed(penalty, time.monotonic())

    def ban(self, peer_id: str) -> None:
        self._bans[peer_id] = time.monotonic() + self._config.ban_seconds

    def unban(self, peer_id: str) -> None:
        self._bans.pop(peer_id, None)
        self._penalties.pop(peer_id, None)

    def ban_remaining(self, peer_id: str) -> float:
        """Seconds until the ban on `peer_id` ends; 0 when not banned."""
        until = self._bans.get(peer_id)
        if until is None:
            return 0.0
        remaining = until - time.monotonic()
        if remaining <= 0:
            del self._bans[peer_id]
            return 0.0
        return remaining

    def _decayed(self, penalty: _Penalty, now: float) -> float:
        return penalty.score * 0.5 ** ((now - penalty.at) / self._config.penalty_half_life)

    # -- snapshots (any thread) -------------------------------------------------
    def snapshot(self) -> list[dict]:
        with self._lock:
            return [dict(entry) for entry in self._snapshot]

    def count(self) -> int:
        with self._lock:
            return len(self._snapshot)

    def wait_for_count(self, predicate, timeout: float) -> bool:
        """Block the calling (non-trio) thread until `predicate(count)` holds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(len(self._snapshot)), timeout)

    def _publish(self) -> None:
        entries = tuple(_describe(peer) for peer in self._peers.values() if peer.counted)
        with self._changed:
            self._snapshot = entries
            self._changed.notify_all()


def _describe(peer: Peer) -> dict:
    status = peer.status
    return {
        "id": peer.peer_id,
        "remoteAddress": peer.remote_address,
        "direction": peer.direction,
        "headNumber": status.head_number if status else None,
        "headHash": "0x" + status.head_hash.hex() if status else None,
        "totalWeight": status.total_weight if status else None,
    }
