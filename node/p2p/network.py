"""The network as it runs on its trio thread: the host and everything attached to
it, started in order and torn down together.

Start order matters: stream handlers and the connection listener exist before we
listen, gossip is joined before anyone can connect, and nobody is dialled until
the caller has been told we are listening (the node waits on that, and a dial
must not need the node's loop while it waits)."""
from __future__ import annotations

import concurrent.futures
import logging
import time
from collections import deque

import multiaddr
import trio
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.rcmgr import Direction
from libp2p.tools.anyio_service import background_trio_service

from node.p2p.bridge import AsyncPort, Bridge
from node.p2p.config import P2PConfig, parse_listen_address
from node.p2p.dialer import Dialer
from node.p2p.gossip import Gossip
from node.p2p.handshake import StatusProtocol
from node.p2p.host import ListenError, advertised_addrs, build_host, listen
from node.p2p.identity import NodeIdentity
from node.p2p.models import MODELS_PROTOCOL, ModelExchange, ModelLookup
from node.p2p.peers import PeerTable
from node.p2p.port import ChainPort, ChainStatus
from node.p2p.sync import SyncClient, Synchronizer, SyncServer
from node.p2p.wire import STATUS_PROTOCOL, SYNC_PROTOCOL

log = logging.getLogger("gridnode.p2p")

STOP_GRACE = 2.0
MAX_PENALTIES_KEPT = 256
"""Seconds `stop` gives connections to close cleanly."""


class Network:
    def __init__(self, config: P2PConfig, identity: NodeIdentity, port: ChainPort, bridge: Bridge,
                 initial_peers: list[PeerInfo], models: ModelLookup | None = None) -> None:
        """`models` looks up stored models by hash on this thread (None: serve none)."""
        self.config = config
        self.identity = identity
        self.bridge = bridge
        self.peers = PeerTable(config)
        self.penalties: deque[dict] = deque(maxlen=MAX_PENALTIES_KEPT)
        """The latest penalties given, newest last, for `admin_misbehaviour` (appended on the trio thread)."""
        self._port = AsyncPort(port, bridge)
        self._initial_peers = initial_peers
        self._stop = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.host = build_host(identity, config)
        self.status = StatusProtocol(self.host, self._port, self.peers, config, on_status=self._on_status,
                                     disconnect=self.disconnect, has_gossip_stream=self._has_gossip_stream)
        self.sync_server = SyncServer(self._port, self.peers, config, self.penalize)
        self.synchronizer = Synchronizer(SyncClient(self.host, config), self._port, self.peers, config, self.penalize)
        self.gossip = Gossip(self.host, self._port, self.peers, config, penalize=self.penalize,
                             request_gap_fill=self.synchronizer.request_gap_fill)
        self.models = ModelExchange(self.host, bridge, models, self.peers, config, self.penalize)
        self.dialer: Dialer | None = None
        self.listen_addrs: list[str] = []

    async def run(self, ready: concurrent.futures.Future[list[str]]) -> None:
        """Run until `request_stop`. `ready` gets our listen addresses once we listen,
        or the ListenError that prevented it (then we return)."""
        try:
            self.host.set_stream_handler(STATUS_PROTOCOL, self.status.handle)
            self.host.set_stream_handler(SYNC_PROTOCOL, self.sync_server.handle)
            self.host.set_stream_handler(MODELS_PROTOCOL, self.models.handle)
            self.host.get_network().register_notifee(_ConnectionEvents(self))
            async with self.host.run(listen_addrs=[]):
                # Only our dialer chooses whom to dial (see dialer.py).
                await self.host.get_network().auto_connector.stop()
                async with background_trio_service(self.gossip.pubsub), background_trio_service(self.gossip.router):
                    await self._run_until_stopped(ready)
                    await self._disconnect_all()
        finally:
            self.gossip.close()

    async def _run_until_stopped(self, ready: concurrent.futures.Future[list[str]]) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self.dialer = Dialer(self.host, self.peers, self.config, nursery)
            await nursery.start(self.gossip.run)
            try:
                await listen(self.host, [parse_listen_address(address) for address in self.config.listen])
            except ListenError as exc:
                ready.set_exception(exc)
                self._nursery = None
                nursery.cancel_scope.cancel()
                return
            self.listen_addrs = advertised_addrs(self.host)
            ready.set_result(self.listen_addrs)
            nursery.start_soon(self.synchronizer.run)
            nursery.start_soon(self.status.refresh_forever)
            for info in self._initial_peers:
                self.dialer.want(info)
            await self._stop.wait()
            self._nursery = None
            nursery.cancel_scope.cancel()

    async def _disconnect_all(self) -> None:
        """Close every connection before the host shuts down. The swarm's own shutdown
        closes connections from a cancelled task (network/swarm.py, `Swarm.run`'s
        finally), so the first await aborts it and the remaining sockets stay open
        (in CLOSE_WAIT) until the garbage collector finds them."""
        with trio.move_on_after(STOP_GRACE):
            async with trio.open_nursery() as nursery:
                for peer_id in list(self.host.get_network().connections):
                    nursery.start_soon(self._close, str(peer_id))

    def request_stop(self) -> None:
        self._stop.set()

    # -- operator actions (trio thread; see P2PService) -----------------------------
    def add_peer(self, info: PeerInfo) -> bool:
        if self.dialer is None:
            return False
        self.peers.unban(str(info.peer_id))
        return self.dialer.want(info)

    def remove_peer(self, peer_id: str) -> bool:
        if self.dialer is None:
            return False
        was_wanted = self.dialer.unwant(peer_id)
        connected = self.peers.get(peer_id) is not None
        # Forget its addresses too, so nothing in libp2p dials it on its own.
        self.host.get_peerstore().clear_addrs(ID.from_base58(peer_id))
        if connected:
            self.disconnect(peer_id, "removed by operator")
        return was_wanted or connected

    # -- peer lifecycle (trio thread) ------------------------------------------------
    def disconnect(self, peer_id: str, reason: str) -> None:
        """Stop counting the peer now and close its connections in the background."""
        log.warning("disconnecting peer %s: %s", peer_id, reason)
        self.peers.uncount(peer_id)
        if self._nursery is not None:  # when stopping, _disconnect_all closes everything
            self._nursery.start_soon(self._close, peer_id)

    def penalize(self, peer_id: str, points: float, reason: str) -> None:
        score = self.peers.penalize(peer_id, points)
        banned = score >= self.config.penalty_ban_threshold
        self.penalties.append({"peer": peer_id, "points": points, "reason": reason, "score": round(score, 1),
                               "banned": banned, "time": int(time.time())})
        log.info("penalised peer %s by %g (%s); score %.1f of %g", peer_id, points, reason, score,
                 self.config.penalty_ban_threshold)
        if banned:
            self.peers.ban(peer_id)
            self.disconnect(peer_id, f"banned for {self.config.ban_seconds:g}s after repeated misbehaviour; last: {reason}")

    async def _close(self, peer_id: str) -> None:
        try:
            await self.host.disconnect(ID.from_base58(peer_id))
        except BaseLibp2pError as exc:
            log.debug("closing the connection to %s: %s", peer_id, exc)

    def _connected(self, connection: INetConn) -> None:
        peer_id = str(connection.muxed_conn.peer_id)
        existing = self.peers.get(peer_id)
        if existing is not None and not existing.connection.is_closed:
            return  # a second connection to a peer we already track
        nursery = self._nursery
        if nursery is None:
            return  # stopping
        banned_for = self.peers.ban_remaining(peer_id)
        direction = "inbound" if connection.direction == Direction.INBOUND else "outbound"
        peer = self.peers.add(peer_id, direction, _remote_address(connection, peer_id), connection)
        if banned_for:
            self.disconnect(peer_id, f"banned for another {banned_for:.0f}s")
            return
        nursery.start_soon(self.status.handshake, peer)

    def _disconnected(self, connection: INetConn) -> None:
        peer_id = str(connection.muxed_conn.peer_id)
        peer = self.peers.get(peer_id)
        if peer is None or peer.connection is not connection:
            return
        others = [other for other in self.host.get_network().get_connections(connection.muxed_conn.peer_id)
                  if not other.is_closed]
        if others and peer.counted:
            peer.connection = others[0]
            return
        if peer.counted:
            log.info("peer %s disconnected", peer_id)
        self.peers.remove(peer)
        if others:  # a newer connection arrived while this one was being dropped: judge it afresh
            self._connected(others[0])

    def _on_status(self, peer_id: str, status: ChainStatus) -> None:
        self.synchronizer.wake()

    def _has_gossip_stream(self, peer_id: str) -> bool:
        return self.gossip.has_stream(peer_id)


class _ConnectionEvents(INotifee):
    """Connection events from the swarm, forwarded to the network. These run inline
    in libp2p's connection setup, so they only record and spawn."""

    def __init__(self, network: Network) -> None:
        self._network = network

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._network._connected(conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._network._disconnected(conn)

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        """Streams are handled per protocol; nothing to do here."""

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        """Streams are handled per protocol; nothing to do here."""

    async def listen(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        """Listening is checked where we start it (host.listen)."""

    async def listen_close(self, network: INetwork, multiaddr: multiaddr.Multiaddr) -> None:
        """Listeners close only when we stop."""


def _remote_address(connection: INetConn, peer_id: str) -> str:
    addresses = connection.get_transport_addresses()
    return f"{addresses[0]}/p2p/{peer_id}" if addresses else f"/p2p/{peer_id}"
