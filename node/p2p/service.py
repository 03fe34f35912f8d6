"""`P2PService`: the network as the node sees it, usable from the node's asyncio
thread (or any thread). It owns the `gridnode-p2p` thread, which runs the trio
loop and py-libp2p; every call here crosses to it through `node.p2p.bridge`,
and none waits on network I/O."""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading

import trio
from libp2p.peer.peerinfo import PeerInfo

from node.p2p.bridge import Bridge, NetworkStopped
from node.p2p.config import (
    NetworkConfigError,
    P2PConfig,
    load_static_peers,
    parse_listen_address,
    parse_peer_address,
)
from node.p2p.host import ListenError
from node.p2p.identity import IdentityError, load_or_create_identity
from node.p2p.models import ModelLookup
from node.p2p.network import Network
from node.p2p.port import ChainPort
from node.p2p.wire import MAX_GOSSIP_MESSAGE

__all__ = ["NetworkError", "P2PConfig", "P2PService"]

log = logging.getLogger("gridnode.p2p")

MAX_TRANSACTION_BYTES = MAX_GOSSIP_MESSAGE - 64
"""A transaction must fit alone in a gossip batch."""
MAX_OUTBOX = 4_096
"""Transactions waiting for the network thread; more means it is stuck, and the pool's
re-announcement sends them later."""


class NetworkError(RuntimeError):
    """The network cannot start: an address is taken, a bootnode is malformed, the node key is unreadable."""


class P2PService:
    def __init__(self, config: P2PConfig, port: ChainPort, loop: asyncio.AbstractEventLoop,
                 models: ModelLookup | None = None) -> None:
        """`port` is called only on `loop`'s thread; `models` (a thread-safe lookup of stored
        models by hash) on the network's. Loads (or creates) the node key, so `peer_id` is known
        before `start`."""
        self.config = config
        self._port = port
        self._models = models
        self._bridge = Bridge(loop)
        try:
            self._identity = load_or_create_identity(config.datadir)
        except (IdentityError, OSError) as exc:
            raise NetworkError(f"cannot load the node key: {exc}") from exc
        self.peer_id: str = self._identity.peer_id
        self._network: Network | None = None
        self._thread: threading.Thread | None = None
        self._listen_addrs: list[str] = []
        self._outbox: list[bytes] = []
        """Transactions admitted on the node's thread, waiting for the network's to take them."""
        self._outbox_lock = threading.Lock()

    # -- lifetime ------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        """Start the network thread; return once listening. Raises NetworkError with a
        readable reason (e.g. the address is taken). Safe to call on the node's loop
        thread: starting never waits on that loop."""
        if self._thread is not None:
            raise RuntimeError("the network is already started")
        try:
            initial_peers = self._initial_peers()
            for address in self.config.listen:
                parse_listen_address(address)
        except NetworkConfigError as exc:
            raise NetworkError(str(exc)) from exc
        network = Network(self.config, self._identity, self._port, self._bridge, initial_peers, self._models)
        ready: concurrent.futures.Future[list[str]] = concurrent.futures.Future()
        self._network = network
        self._thread = threading.Thread(target=self._run, args=(network, ready), name="gridnode-p2p", daemon=True)
        self._thread.start()
        try:
            self._listen_addrs = ready.result(timeout)
        except concurrent.futures.TimeoutError:
            self.stop()
            raise NetworkError(f"the network did not start within {timeout:g}s") from None
        except ListenError as exc:
            self._forget_failed_start()
            raise NetworkError(str(exc)) from None
        except BaseException:
            self._forget_failed_start()
            raise

    def _forget_failed_start(self) -> None:
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        self._network = None

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect everyone and end the network thread. Idempotent."""
        thread, network = self._thread, self._network
        self._network = None
        if thread is None:
            return
        if network is not None:
            try:
                self._bridge.submit(network.request_stop)
            except NetworkStopped:
                log.debug("the network had already stopped")
        thread.join(timeout)
        if thread.is_alive():
            log.error("the network thread did not stop within %gs", timeout)
            return
        self._thread = None

    def _run(self, network: Network, ready: concurrent.futures.Future[list[str]]) -> None:
        """Body of the network thread."""
        try:
            trio.run(self._main, network, ready)
        except BaseException as exc:  # reported to start() if it is still waiting, else logged
            if not ready.done():
                ready.set_exception(exc)
            else:
                log.exception("the network thread stopped with an error")
        finally:
            self._bridge.detach()
            network.peers.clear()
            network.synchronizer.stopped()

    async def _main(self, network: Network, ready: concurrent.futures.Future[list[str]]) -> None:
        self._bridge.attach()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump_outbox, network)
            await network.run(ready)
            nursery.cancel_scope.cancel()

    # -- publishing (non-blocking, thread-safe) -------------------------------------
    def publish_block(self, encoded: bytes) -> bool:
        """Gossip a block this node produced. False if it cannot go out: larger than one gossip
        message (the node's producer never seals one, see vm/limits.py; this layer still keeps
        its own limit for any port), or the network is stopped."""
        network = self._network
        if network is None:
            return False
        if len(encoded) > MAX_GOSSIP_MESSAGE:
            log.warning("block of %d bytes is too large for gossip: not sent", len(encoded))
            return False
        return self._submit(network.gossip.enqueue_block, bytes(encoded))

    def publish_transaction(self, raw: bytes) -> bool:
        """Gossip a transaction this node admitted (batched with others within a few ms)."""
        network = self._network
        if network is None:
            return False
        if len(raw) > MAX_TRANSACTION_BYTES:
            log.warning("transaction of %d bytes is too large for gossip", len(raw))
            return False
        with self._outbox_lock:
            if len(self._outbox) >= MAX_OUTBOX:
                log.warning("gossip outbox full; a transaction is not announced now (re-announcement will)")
                return False
            self._outbox.append(bytes(raw))
        return True

    async def _pump_outbox(self, network: Network) -> None:
        """On the network's thread: every half gossip batch delay, hand what was admitted since to
        gossip. The network pulls; the node never wakes its thread per transaction (a wakeup
        costs a syscall and a GIL hand-over: a third of eth_sendRawTransaction's time under load)."""
        while True:
            await trio.sleep(self.config.tx_batch_delay / 2)
            self._drain_outbox(network)

    def _drain_outbox(self, network: Network) -> None:
        with self._outbox_lock:
            batch, self._outbox = self._outbox, []
        for raw in batch:
            network.gossip.enqueue_transaction(raw)

    def _submit(self, fn, data: bytes) -> bool:
        try:
            self._bridge.submit(fn, data)
        except NetworkStopped:
            return False
        return True

    def fetch_models(self, hashes: list[bytes], seconds: float) -> concurrent.futures.Future:
        """Models fetched from peers (node/p2p/models.py), by hash, within `seconds`; a future of
        a dict holding those found ({} if the network is not running). Thread-safe, never blocks."""
        network = self._network
        if network is None:
            future: concurrent.futures.Future = concurrent.futures.Future()
            future.set_result({})
            return future
        return network.models.fetch_many_future(hashes, seconds)

    # -- peers ---------------------------------------------------------------------
    def peers(self) -> list[dict]:
        """Counted peers: {"id", "remoteAddress", "direction", "headNumber", "headHash", "totalWeight"}."""
        network = self._network
        return network.peers.snapshot() if network else []

    def penalties(self) -> list[dict]:
        """The latest penalties this node gave peers: {"peer", "points", "reason", "score", "banned", "time"}."""
        network = self._network
        return list(network.penalties) if network else []

    def peer_count(self) -> int:
        network = self._network
        return network.peers.count() if network else 0

    def wait_for_peers(self, count: int, timeout: float, *, exactly: bool = False) -> bool:
        """Block this (non-network) thread until there are at least (or exactly) `count` peers."""
        network = self._network
        if network is None:
            return False
        return network.peers.wait_for_count((lambda n: n == count) if exactly else (lambda n: n >= count), timeout)

    def add_peer(self, multiaddr: str) -> bool:
        """Dial `…/p2p/<peer id>` now and keep redialling it while disconnected.
        False for a malformed address or our own id."""
        try:
            info = parse_peer_address(multiaddr)
        except NetworkConfigError as exc:
            log.info("add_peer: %s", exc)
            return False
        network = self._network
        if network is None:
            return False
        try:
            return self._bridge.run_sync(network.add_peer, info)
        except NetworkStopped:
            return False

    def remove_peer(self, peer_id: str) -> bool:
        """Disconnect `peer_id` and stop redialling it until `add_peer`. It may still
        dial us; to cut a link, remove on both sides. False if it was neither
        connected nor wanted."""
        network = self._network
        if network is None:
            return False
        try:
            return self._bridge.run_sync(network.remove_peer, peer_id)
        except (NetworkStopped, ValueError):
            return False

    # -- state ---------------------------------------------------------------------
    def sync_progress(self) -> tuple[int, int, int] | None:
        """(starting block, current block, highest block) while syncing, else None."""
        network = self._network
        return network.synchronizer.progress() if network else None

    def listen_addrs(self) -> list[str]:
        """Full multiaddrs, `/ip4/…/tcp/…/p2p/<peer id>`."""
        return list(self._listen_addrs)

    def _initial_peers(self) -> list[PeerInfo]:
        addresses = list(self.config.bootnodes) + list(load_static_peers(self.config.static_peers_file()))
        return [parse_peer_address(address) for address in addresses]
