"""Keeps the peers we want connected: bootnodes, static peers and peers added by
the operator. Each has one task that dials it, waits while it is connected, and
redials after a disconnect with exponential backoff (doubling from
`redial_initial` to `redial_max`, with jitter so a restarted network does not
redial in lockstep). The backoff resets only after a successful handshake, so a
peer that connects and is then refused (another chain, a key it does not admit)
is retried ever more slowly. `unwant` stops the task: removed peers are not
redialled until wanted again.

py-libp2p also has an auto-connector that dials any peer in the peerstore while
below its connection watermark; the network stops it at start, because here only
this module decides whom to dial (it would redial removed and banned peers)."""
from __future__ import annotations

import logging
import random

import trio
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.basic_host import BasicHost
from libp2p.peer.peerinfo import PeerInfo

from node.p2p.config import P2PConfig
from node.p2p.peers import PeerTable

log = logging.getLogger("gridnode.p2p")


class Dialer:
    def __init__(self, host: BasicHost, peers: PeerTable, config: P2PConfig, nursery: trio.Nursery) -> None:
        self._host = host
        self._peers = peers
        self._config = config
        self._nursery = nursery
        self._wanted: dict[str, tuple[PeerInfo, trio.CancelScope]] = {}

    def want(self, info: PeerInfo) -> bool:
        """Keep `info` connected; False for our own id. Re-wanting updates the address."""
        peer_id = str(info.peer_id)
        if info.peer_id == self._host.get_id():
            return False
        current = self._wanted.pop(peer_id, None)
        if current is not None:
            current[1].cancel()
        scope = trio.CancelScope()
        self._wanted[peer_id] = (info, scope)
        self._nursery.start_soon(self._keep_connected, info, scope)
        return True

    def unwant(self, peer_id: str) -> bool:
        current = self._wanted.pop(peer_id, None)
        if current is None:
            return False
        current[1].cancel()
        return True

    async def _keep_connected(self, info: PeerInfo, scope: trio.CancelScope) -> None:
        peer_id = str(info.peer_id)
        delay = self._config.redial_initial
        with scope:
            while True:
                banned_for = self._peers.ban_remaining(peer_id)
                if banned_for:
                    await trio.sleep(banned_for)
                    continue
                peer = self._peers.get(peer_id)
                if peer is None and await self._dial(info):
                    peer = self._peers.get(peer_id)
                if peer is not None:
                    await peer.gone.wait()
                    if peer.status is not None:  # it had passed the handshake: redial at once
                        delay = self._config.redial_initial
                        log.debug("redialling %s", peer_id)
                        continue
                await trio.sleep(_jittered(delay))
                delay = min(delay * 2, self._config.redial_max)

    async def _dial(self, info: PeerInfo) -> bool:
        # The swarm remembers peers whose dials failed and refuses to dial them for a
        # minute (its "negative cache"); our backoff is the only throttle we want.
        self._host.get_network().unblock_peer(info.peer_id)
        try:
            with trio.fail_after(self._config.dial_timeout):
                await self._host.connect(info)
        except (BaseLibp2pError, OSError, trio.TooSlowError) as exc:
            log.debug("dial %s failed: %s", info.peer_id, exc)
            return False
        return True


def _jittered(delay: float) -> float:
    return delay * random.uniform(0.8, 1.2)
