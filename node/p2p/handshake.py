"""Permissioned peering: the status exchange on `/gridnode/status/1.0.0`.

On every new connection, inbound or outbound, we check that the peer's node key
is admitted (`ChainPort.is_admitted`) and ask for its `ChainStatus`, sending ours;
a peer on another chain or genesis, or with a key we do not admit, is
disconnected with the reason logged. Only then does it count as a peer. Both sides
run the exchange, so each learns the other's status from its own request and
each enforces its own admission rule when answering.

The same exchange repeats every `status_interval` seconds: it is how a node that
missed gossip learns it is behind (and starts a sync), how a node key revoked
on-chain is noticed, and how dead connections are found."""
from __future__ import annotations

import logging
from collections.abc import Callable

import trio
from libp2p.abc import INetStream
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.basic_host import BasicHost
from libp2p.peer.id import ID

from node.p2p.bridge import AsyncPort, PortError
from node.p2p.config import P2PConfig
from node.p2p.peers import Peer, PeerTable
from node.p2p.port import ChainStatus
from node.p2p.wire import (
    MAX_STATUS_FRAME,
    STATUS_PROTOCOL,
    RemoteError,
    WireError,
    close_stream,
    decode_items,
    decode_status,
    encode_error,
    encode_items,
    encode_status,
    read_frame,
    write_frame,
)

log = logging.getLogger("gridnode.p2p")

NOT_ADMITTED = "node key not admitted"
REFRESHES_WITHOUT_GOSSIP_LIMIT = 4


class StatusProtocol:
    def __init__(self, host: BasicHost, port: AsyncPort, peers: PeerTable, config: P2PConfig, *,
                 on_status: Callable[[str, ChainStatus], None],
                 disconnect: Callable[[str, str], None],
                 has_gossip_stream: Callable[[str], bool]) -> None:
        self._host = host
        self._port = port
        self._peers = peers
        self._config = config
        self._on_status = on_status
        self._disconnect = disconnect
        self._has_gossip_stream = has_gossip_stream

    def incompatibility(self, status: ChainStatus) -> str | None:
        """Why a peer with this status cannot be ours, or None."""
        if status.chain_id != self._config.chain_id:
            return f"chain id {status.chain_id}, ours is {self._config.chain_id}"
        if status.genesis_hash != self._config.genesis_hash:
            return f"genesis 0x{status.genesis_hash.hex()}, ours is 0x{self._config.genesis_hash.hex()}"
        return None

    # -- on connect -------------------------------------------------------------
    async def handshake(self, peer: Peer) -> None:
        peer_id = peer.peer_id
        try:
            with trio.fail_after(self._config.handshake_timeout):
                if not await self._port.is_admitted(peer_id):
                    self._disconnect(peer_id, NOT_ADMITTED)
                    return
                theirs = await self.request(peer_id)
        except trio.TooSlowError:
            self._disconnect(peer_id, "status handshake timed out")
            return
        except RemoteError as exc:
            self._disconnect(peer_id, f"peer refused our status: {exc}")
            return
        except (WireError, BaseLibp2pError) as exc:
            self._disconnect(peer_id, f"status handshake failed: {exc}")
            return
        except PortError as exc:
            self._disconnect(peer_id, f"the node could not check this peer: {exc}")
            return
        reason = self.incompatibility(theirs)
        if reason is not None:
            self._disconnect(peer_id, reason)
            return
        if self._peers.mark_counted(peer, theirs):
            log.info("peer %s connected (%s %s, head %d)", peer_id, peer.direction, peer.remote_address,
                     theirs.head_number)
            self._on_status(peer_id, theirs)

    # -- requester ---------------------------------------------------------------
    async def request(self, peer_id: str) -> ChainStatus:
        """Send our status, return theirs. Callers bound it with a deadline."""
        ours = encode_status(await self._port.status())
        stream = await self._host.new_stream(ID.from_base58(peer_id), [STATUS_PROTOCOL])
        try:
            await write_frame(stream, ours)
            answer = await read_frame(stream, MAX_STATUS_FRAME)
        finally:
            await close_stream(stream)
        items = decode_items(answer, 1)
        if len(items) != 1:
            raise WireError("status answer: expected one status")
        return decode_status(items[0])

    # -- responder -----------------------------------------------------------
    async def handle(self, stream: INetStream) -> None:
        peer_id = str(stream.muxed_conn.peer_id)
        try:
            with trio.fail_after(self._config.handshake_timeout):
                await self._answer(peer_id, stream)
        except trio.TooSlowError:
            log.debug("status request from %s timed out", peer_id)
        except BaseLibp2pError as exc:
            log.debug("status request from %s failed: %s", peer_id, exc)
        except PortError as exc:
            log.debug("status request from %s not answered: %s", peer_id, exc)
        finally:
            await close_stream(stream)

    async def _answer(self, peer_id: str, stream: INetStream) -> None:
        try:
            theirs = decode_status(await read_frame(stream, MAX_STATUS_FRAME))
        except WireError as exc:
            await write_frame(stream, encode_error(f"bad status: {exc}"))
            return
        if not await self._port.is_admitted(peer_id):
            await write_frame(stream, encode_error(NOT_ADMITTED))
            self._disconnect(peer_id, NOT_ADMITTED)
            return
        await write_frame(stream, encode_items([encode_status(await self._port.status())]))
        # An incompatible peer still gets our status, so it can log why it must leave;
        # our own handshake request disconnects it.
        if self.incompatibility(theirs) is None and self._peers.is_counted(peer_id):
            self._peers.update_status(peer_id, theirs)
            self._on_status(peer_id, theirs)

    # -- periodic refresh -----------------------------------------------------
    async def refresh_forever(self) -> None:
        while True:
            await trio.sleep(self._config.status_interval)
            async with trio.open_nursery() as nursery:
                for peer in self._peers.counted():
                    nursery.start_soon(self._refresh, peer)

    async def _refresh(self, peer: Peer) -> None:
        peer_id = peer.peer_id
        # py-libp2p reopens a peer's gossip stream after most failures while the
        # connection lives, but gives up on errors it deems final; then only a new
        # connection brings gossip back.
        peer.refreshes_without_gossip = 0 if self._has_gossip_stream(peer_id) else peer.refreshes_without_gossip + 1
        if peer.refreshes_without_gossip >= REFRESHES_WITHOUT_GOSSIP_LIMIT:
            self._disconnect(peer_id, "no gossip stream for several status intervals")
            return
        try:
            with trio.fail_after(self._config.request_timeout):
                theirs = await self.request(peer_id)
        except (trio.TooSlowError, RemoteError, WireError, BaseLibp2pError) as exc:
            peer.status_failures += 1
            log.debug("status refresh from %s failed (%d in a row): %s", peer_id, peer.status_failures, exc)
            if peer.status_failures >= self._config.status_failures_before_disconnect:
                self._disconnect(peer_id, f"{peer.status_failures} status requests failed; last: {exc}")
            return
        except PortError as exc:
            log.debug("status refresh from %s skipped: %s", peer_id, exc)
            return
        reason = self.incompatibility(theirs)
        if reason is not None:
            self._disconnect(peer_id, reason)
            return
        self._peers.update_status(peer_id, theirs)
        self._on_status(peer_id, theirs)
