"""Several P2PService instances in one process, on loopback, each with a fake chain.

The fake `ChainPort` is a toy chain: a block is msgpack([number, parent hash,
payload]) identified by its keccak hash, fork choice is "longest", a payload
starting with b"invalid" is invalid, and so is a transaction starting with
b"invalid". It runs on an asyncio loop in its own thread, as the node's chain
does, and records any call made from another thread (the bridge must prevent
that). Waits are on conditions, never on wall-clock sleeps."""
from __future__ import annotations

import asyncio
import logging
import re
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgpack
import multiaddr
import pytest
import trio
from libp2p import new_swarm
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.basic_host import BasicHost
from libp2p.network.config import RetryConfig
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.transport.tcp.tcp import TCP
from libp2p.utils import encode_varint_prefixed

from node.p2p.port import ChainStatus, ImportResult, Outcome
from node.p2p.service import MAX_OUTBOX, NetworkError, P2PConfig, P2PService
from node.p2p.wire import (
    MAX_GOSSIP_MESSAGE,
    SYNC_PROTOCOL,
    HashesRequest,
    RemoteError,
    decode_items,
    encode_request,
    read_frame,
)
from vm.crypto import keccak256

CHAIN_ID = 1337
WAIT = 15.0


# -- the node's loop, and a fake chain living on it --------------------------------
class LoopThread:
    """An asyncio loop on its own thread, standing in for the node's main loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._running = threading.Event()
        self.thread = threading.Thread(target=self._run, name="node-loop", daemon=True)
        self.thread.start()
        self._running.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._running.set)
        self.loop.run_forever()
        self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


def make_block(number: int, parent: bytes, payload: bytes) -> bytes:
    return msgpack.packb([number, parent, payload])


GENESIS = make_block(0, bytes(32), b"genesis")


class FakeChain:
    def __init__(self, loop_thread: LoopThread, genesis: bytes = GENESIS) -> None:
        self._loop_thread = loop_thread
        self._changed = threading.Condition()
        self.store: dict[bytes, bytes] = {keccak256(genesis): genesis}
        self.canonical: list[bytes] = [keccak256(genesis)]
        self.transactions: list[bytes] = []
        self.imports_seen: list[bytes] = []
        self.admitted: set[str] | None = None
        """Peer ids admitted; None admits everyone."""
        self.off_thread_calls = 0
        self.on_import: Callable[[], None] | None = None

    # ChainPort
    def status(self) -> ChainStatus:
        self._check_thread()
        with self._changed:
            head = len(self.canonical) - 1
            return ChainStatus(CHAIN_ID, self.canonical[0], head, self.canonical[-1], head)

    def import_block(self, encoded: bytes, durable: bool = True) -> ImportResult:
        self._check_thread()
        if self.on_import is not None:
            self.on_import()
        with self._changed:
            self.imports_seen.append(encoded)
            try:
                number, parent, payload = msgpack.unpackb(encoded)
            except (ValueError, TypeError):
                return ImportResult(Outcome.INVALID, "not a block")
            if payload.startswith(b"invalid"):
                return ImportResult(Outcome.INVALID, "bad payload", number)
            block_hash = keccak256(encoded)
            if block_hash in self.store:
                return ImportResult(Outcome.KNOWN, "", number)
            if parent not in self.store:
                return ImportResult(Outcome.UNKNOWN_PARENT, "", number)
            self.store[block_hash] = encoded
            if number > len(self.canonical) - 1:
                self._reorg_to(block_hash, number)
            self._changed.notify_all()
            return ImportResult(Outcome.ACCEPTED, "", number)

    def add_transaction(self, raw: bytes) -> ImportResult:
        self._check_thread()
        with self._changed:
            if raw.startswith(b"invalid"):
                return ImportResult(Outcome.INVALID, "bad signature")
            if raw in self.transactions:
                return ImportResult(Outcome.KNOWN)
            self.transactions.append(raw)
            self._changed.notify_all()
            return ImportResult(Outcome.ACCEPTED)

    def blocks(self, start: int, count: int) -> list[bytes]:
        self._check_thread()
        with self._changed:
            return [self.store[block_hash] for block_hash in self.canonical[start:start + count]]

    def canonical_hash(self, number: int) -> bytes | None:
        self._check_thread()
        with self._changed:
            return self.canonical[number] if number < len(self.canonical) else None

    def is_admitted(self, peer_id: str) -> bool:
        self._check_thread()
        return self.admitted is None or peer_id in self.admitted

    # test helpers (any thread)
    @property
    def head(self) -> int:
        with self._changed:
            return len(self.canonical) - 1

    def extend(self, count: int, tag: bytes = b"block") -> list[bytes]:
        """Append `count` blocks to our canonical chain directly; returns them encoded."""
        made = []
        with self._changed:
            for _ in range(count):
                number = len(self.canonical)
                block = make_block(number, self.canonical[-1], tag + b"%d" % number)
                self.store[keccak256(block)] = block
                self.canonical.append(keccak256(block))
                made.append(block)
            self._changed.notify_all()
        return made

    def wait_for(self, predicate: Callable[[FakeChain], bool], timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def _reorg_to(self, block_hash: bytes, number: int) -> None:
        path = [block_hash]
        while number > 0:
            _, parent, _ = msgpack.unpackb(self.store[path[-1]])
            number -= 1
            if number < len(self.canonical) and self.canonical[number] == parent:
                break
            path.append(parent)
        del self.canonical[number + 1:]
        self.canonical.extend(reversed(path))

    def _check_thread(self) -> None:
        if threading.current_thread() is not self._loop_thread.thread:
            self.off_thread_calls += 1


class LogWatch(logging.Handler):
    """Collects gridnode.p2p log lines and lets a test wait for one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.lines.append(record.getMessage())
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = WAIT, count: int = 1) -> bool:
        regex = re.compile(pattern)
        with self._changed:
            return self._changed.wait_for(lambda: sum(1 for line in self.lines if regex.search(line)) >= count,
                                          timeout)

    def seen(self, pattern: str) -> bool:
        regex = re.compile(pattern)
        with self._changed:
            return any(regex.search(line) for line in self.lines)


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def node_loop():
    loop_thread = LoopThread()
    yield loop_thread
    loop_thread.stop()


@pytest.fixture
def logs():
    watch = LogWatch()
    logger = logging.getLogger("gridnode.p2p")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(watch)
    yield watch
    logger.removeHandler(watch)
    logger.setLevel(previous)


class Node:
    def __init__(self, service: P2PService, chain: FakeChain) -> None:
        self.service = service
        self.chain = chain

    @property
    def address(self) -> str:
        return self.service.listen_addrs()[0]

    @property
    def peer_id(self) -> str:
        return self.service.peer_id


@pytest.fixture
def network(tmp_path, node_loop):
    """Makes started nodes; stops them all at the end and checks the fake chains
    were only ever called on the node loop's thread."""
    nodes: list[Node] = []

    def make(*, bootnodes: tuple[str, ...] = (), chain: FakeChain | None = None, start: bool = True,
             **settings) -> Node:
        chain = chain or FakeChain(node_loop)
        fast = {"listen": ("/ip4/127.0.0.1/tcp/0",), "status_interval": 0.5, "redial_initial": 0.1, "redial_max": 1.0,
                "handshake_timeout": 5.0, "request_timeout": 5.0, "dial_timeout": 5.0, "ban_seconds": 60.0}
        fast.update(settings)
        config = P2PConfig(datadir=tmp_path / f"node{len(nodes)}", chain_id=CHAIN_ID,
                           genesis_hash=chain.canonical[0], bootnodes=bootnodes, **fast)
        node = Node(P2PService(config, chain, node_loop.loop), chain)
        nodes.append(node)
        if start:
            node.service.start()
        return node

    yield make
    for node in nodes:
        node.service.stop()
    assert all(node.chain.off_thread_calls == 0 for node in nodes), "the port was called off the node's loop thread"


def run_in_network(node: Node, async_fn, *args):
    """Run `async_fn(host, *args)` on the node's trio thread (for tests that speak raw libp2p)."""
    network = node.service._network
    return trio.from_thread.run(async_fn, network.host, *args, trio_token=network.bridge._token)


# -- peering -----------------------------------------------------------------------------
def test_bootnode_connect_handshake_and_peer_lists(network):
    a = network()
    b = network(bootnodes=(a.address,))
    assert re.fullmatch(r"/ip4/127\.0\.0\.1/tcp/\d+/p2p/" + re.escape(a.peer_id), a.address)
    assert a.service.wait_for_peers(1, WAIT) and b.service.wait_for_peers(1, WAIT)
    assert a.service.peer_count() == b.service.peer_count() == 1
    [seen_by_a] = a.service.peers()
    [seen_by_b] = b.service.peers()
    assert seen_by_a["id"] == b.peer_id and seen_by_a["direction"] == "inbound"
    assert seen_by_b["id"] == a.peer_id and seen_by_b["direction"] == "outbound"
    assert seen_by_b["remoteAddress"] == a.address
    assert seen_by_b["headNumber"] == 0 and seen_by_b["headHash"] == "0x" + a.chain.canonical[0].hex()
    key = Path(a.service.config.datadir) / "node.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_peer_offering_only_plaintext_cannot_connect(network):
    a = network()

    async def dial_in_plaintext():
        key_pair = create_new_key_pair()
        swarm = new_swarm(key_pair=key_pair, sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(key_pair)},
                          muxer_opt={YAMUX_PROTOCOL_ID: Yamux}, transports=[TCP()],
                          retry_config=RetryConfig(max_retries=0))
        host = BasicHost(network=swarm)
        async with host.run(listen_addrs=[]):
            with trio.fail_after(WAIT), pytest.raises(BaseLibp2pError):
                await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(a.address)))

    trio.run(dial_in_plaintext)
    assert a.service.peer_count() == 0


def test_static_peers_file_is_dialled(network):
    a = network()
    b = network(start=False)
    (Path(b.service.config.datadir) / "static-peers.json").write_text(f'["{a.address}"]')
    b.service.start()
    assert b.service.wait_for_peers(1, WAIT)


def test_malformed_bootnode_and_static_peers_are_readable_errors(network):
    with pytest.raises(NetworkError, match="/p2p/<peer id>"):
        network(bootnodes=("/ip4/127.0.0.1/tcp/1",))
    b = network(start=False)
    (Path(b.service.config.datadir) / "static-peers.json").write_text("{not json")
    with pytest.raises(NetworkError, match="static-peers.json: not JSON"):
        b.service.start()


def test_address_in_use_is_a_readable_error(network):
    a = network()
    port = a.address.split("/")[4]
    threads = set(threading.enumerate())
    b = network(start=False, listen=(f"/ip4/127.0.0.1/tcp/{port}",))
    with pytest.raises(NetworkError, match=f"cannot listen on /ip4/127.0.0.1/tcp/{port}: address already in use"):
        b.service.start()
    assert set(threading.enumerate()) <= threads


def test_other_genesis_and_unadmitted_key_are_disconnected_and_never_counted(network, node_loop, logs):
    a = network()
    stranger = network(chain=FakeChain(node_loop, make_block(0, bytes(32), b"another genesis")),
                       bootnodes=(a.address,), start=False)
    intruder = network(bootnodes=(a.address,), start=False)
    a.chain.admitted = {stranger.peer_id}  # its key is admitted, but it is on another chain
    stranger.service.start()
    intruder.service.start()

    assert logs.wait_for(rf"disconnecting peer {stranger.peer_id}: genesis 0x[0-9a-f]{{64}}, ours is 0x")
    assert logs.wait_for(rf"disconnecting peer {a.peer_id}: genesis 0x[0-9a-f]{{64}}, ours is 0x")
    assert logs.wait_for(rf"disconnecting peer {intruder.peer_id}: node key not admitted")
    # the intruder hears why, unless a hangs up before answering
    assert logs.wait_for(rf"disconnecting peer {a.peer_id}: (peer refused our status: node key not admitted"
                         r"|status handshake failed)")
    # they keep redialling a (it is their bootnode) and keep being refused
    assert logs.wait_for(rf"disconnecting peer {intruder.peer_id}: node key not admitted", count=2)
    assert a.service.peer_count() == stranger.service.peer_count() == intruder.service.peer_count() == 0
    assert not logs.seen(r"peer \S+ connected")


# -- gossip ------------------------------------------------------------------------------
def line_of_three(network, **settings) -> tuple[Node, Node, Node]:
    """a - b - c: c hears a's gossip only through b's relay."""
    a = network(**settings)
    b = network(bootnodes=(a.address,), **settings)
    c = network(bootnodes=(b.address,), **settings)
    assert b.service.wait_for_peers(2, WAIT) and a.service.wait_for_peers(1, WAIT)
    assert c.service.wait_for_peers(1, WAIT)
    return a, b, c


def test_gossiped_transactions_and_blocks_pass_the_validators_and_reach_every_node(network):
    a, b, c = line_of_three(network)
    burst = [b"tx-%d" % index for index in range(300)]
    for raw in burst:
        assert a.service.publish_transaction(raw)
    assert c.chain.wait_for(lambda chain: len(chain.transactions) == len(burst))
    assert sorted(b.chain.transactions) == sorted(burst)  # b admitted each before relaying it
    [block] = a.chain.extend(1)
    sent = time.monotonic()
    assert a.service.publish_block(block)
    assert c.chain.wait_for(lambda chain: chain.head == 1)
    print(f"block gossip a -> b -> c: {1000 * (time.monotonic() - sent):.1f} ms")
    assert b.chain.canonical == c.chain.canonical == a.chain.canonical


def test_admitted_transactions_never_wake_the_network_thread_it_takes_them_in_order_and_the_outbox_is_bounded(
        network, monkeypatch):
    a = network()
    crossings, sent = [], []
    monkeypatch.setattr(a.service, "_submit", lambda fn, data: crossings.append(fn) or True)
    monkeypatch.setattr(a.service, "_drain_outbox", lambda network: None)  # the network thread is stuck
    assert all(a.service.publish_transaction(b"tx-%d" % k) for k in range(MAX_OUTBOX))
    assert not a.service.publish_transaction(b"one too many")  # the pool's re-announcement sends it later
    monkeypatch.undo()
    monkeypatch.setattr(a.service._network.gossip, "enqueue_transaction", sent.append)
    deadline = time.monotonic() + 10
    while len(sent) < MAX_OUTBOX and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sent == [b"tx-%d" % k for k in range(MAX_OUTBOX)] and crossings == []  # pulled, in the order admitted
    assert a.service.publish_transaction(b"after")  # the outbox is empty again


def test_invalid_gossip_is_not_relayed_and_a_repeat_offender_is_banned(network, logs):
    a, b, c = line_of_three(network, status_interval=60.0)
    # one batch (published within the batching delay) with a good and a bad transaction:
    # b relays only the good one, as a batch of its own
    assert a.service.publish_transaction(b"good-tx") and a.service.publish_transaction(b"invalid-tx")
    assert logs.wait_for(rf"penalised peer {a.peer_id} by 1 \(1 invalid transactions, e.g. bad signature\)")
    assert c.chain.wait_for(lambda chain: chain.transactions == [b"good-tx"])
    bad_blocks = [make_block(1, a.chain.canonical[0], b"invalid %d" % index) for index in range(3)]
    for number, bad in enumerate(bad_blocks, start=1):
        assert a.service.publish_block(bad)
        assert logs.wait_for(rf"penalised peer {a.peer_id} by 10 \(invalid block 1: bad payload\)", count=number)
    assert logs.wait_for(rf"disconnecting peer {a.peer_id}: banned for 60s")
    assert b.service.wait_for_peers(1, WAIT, exactly=True) and a.service.wait_for_peers(0, WAIT, exactly=True)
    assert [peer["id"] for peer in b.service.peers()] == [c.peer_id]
    assert not any(seen in bad_blocks for seen in c.chain.imports_seen)
    assert c.chain.transactions == [b"good-tx"] and c.chain.head == 0
    # the ban holds against b's own redialling (a is its bootnode) until the operator lifts it
    assert not b.service.wait_for_peers(2, 1.5)
    assert b.service.add_peer(a.address)
    assert b.service.wait_for_peers(2, WAIT)


def test_gossip_larger_than_one_mebibyte_is_refused_without_harm(network):
    a = network()
    b = network(bootnodes=(a.address,))
    assert b.service.wait_for_peers(1, WAIT) and a.service.wait_for_peers(1, WAIT)
    assert not a.service.publish_block(b"x" * (MAX_GOSSIP_MESSAGE + 1))
    assert not a.service.publish_transaction(b"x" * (MAX_GOSSIP_MESSAGE + 1))

    async def send_oversized_gossip_frame(host, peer_id):
        # Straight onto a's gossip stream to b, past every check a sender makes:
        # a length prefix of 1.5 MiB, then the start of the body.
        stream = a.service._network.gossip.pubsub.peers[ID.from_base58(peer_id)]
        await stream.write(b"\x80\x80\x60" + bytes(4096))

    run_in_network(a, send_oversized_gossip_frame, b.peer_id)
    # b resets that stream without reading the body; the first message a sends on
    # it is lost, the stream is reopened, and the network carries on.
    blocks = a.chain.extend(2)
    for block in blocks:
        a.service.publish_block(block)
    assert b.chain.wait_for(lambda chain: chain.head == 2)
    assert all(len(seen) < 1024 for seen in b.chain.imports_seen)
    assert b.service.peer_count() == 1


# -- sync ----------------------------------------------------------------------------------
def test_a_node_300_blocks_behind_syncs_by_request_and_reports_progress(network):
    a = network()
    a.chain.extend(300)
    b = network(start=False)
    progress: list[tuple[int, int, int] | None] = []
    b.chain.on_import = lambda: progress.append(b.service.sync_progress())
    started = time.monotonic()
    b.service.start()
    b.service.add_peer(a.address)
    assert b.chain.wait_for(lambda chain: chain.head == 300)
    elapsed = time.monotonic() - started
    print(f"synced 300 blocks in {elapsed:.2f}s ({300 / elapsed:.0f} blocks/s, including connect and handshake)")
    assert b.chain.canonical == a.chain.canonical
    reported = [entry for entry in progress if entry is not None]
    assert reported, "sync_progress() reported nothing during the sync"
    assert all(start == 0 and highest == 300 and start <= current <= highest for start, current, highest in reported)
    assert [current for _, current, _ in reported] == sorted(current for _, current, _ in reported)
    assert a.chain.imports_seen == []  # nothing came by gossip


def test_a_gossiped_block_with_an_unknown_parent_fills_the_gap(network, logs):
    a = network(status_interval=60.0)  # no status refresh: only the gap fill can fetch the missing blocks
    b = network(bootnodes=(a.address,), status_interval=60.0)
    assert b.service.wait_for_peers(1, WAIT) and a.service.wait_for_peers(1, WAIT)
    *_, newest = a.chain.extend(5)
    a.service.publish_block(newest)
    assert b.chain.wait_for(lambda chain: chain.head == 5)
    assert logs.seen(r"block 5 from \S+ has an unknown parent; fetching the gap")
    assert b.chain.canonical == a.chain.canonical


def test_forked_chains_converge_on_the_longer_one_from_the_common_ancestor(network, node_loop, logs):
    shared = FakeChain(node_loop)
    shared.extend(10)
    longer, shorter = FakeChain(node_loop), FakeChain(node_loop)
    for chain in (longer, shorter):
        chain.store, chain.canonical = dict(shared.store), list(shared.canonical)
    longer.extend(200, b"long")
    shorter.extend(150, b"short")
    long_canonical = list(longer.canonical)
    a = network(chain=longer)
    b = network(chain=shorter, bootnodes=(a.address,))
    assert b.chain.wait_for(lambda chain: chain.canonical == long_canonical)
    assert logs.wait_for(rf"synced 200 blocks from {a.peer_id} \(common ancestor 10\)")
    assert a.chain.canonical == long_canonical  # the longer side never adopts the shorter fork


def test_equal_weight_forks_are_exchanged_so_each_port_can_apply_its_tie_break(network, node_loop):
    chains = [FakeChain(node_loop), FakeChain(node_loop)]
    chains[0].extend(3, b"left")
    chains[1].extend(3, b"right")
    heads = [chain.canonical[-1] for chain in chains]
    a = network(chain=chains[0])
    network(chain=chains[1], bootnodes=(a.address,))
    for chain, other_head, own_head in ((chains[0], heads[1], heads[0]), (chains[1], heads[0], heads[1])):
        assert chain.wait_for(lambda fake, block=other_head: block in fake.store)
        assert chain.canonical[-1] == own_head  # the fake's fork choice keeps the first of equal forks


def test_malformed_and_oversized_sync_requests_get_an_error_answer(network):
    a = network()
    a.chain.extend(3)
    b = network(bootnodes=(a.address,))
    assert b.service.wait_for_peers(1, WAIT) and a.service.wait_for_peers(1, WAIT)

    async def ask(host, payload: bytes):
        stream = await host.new_stream(ID.from_base58(a.peer_id), [SYNC_PROTOCOL])
        try:
            await stream.write(payload)
            with trio.fail_after(5):
                answer = await read_frame(stream, 1 << 20)
                try:
                    rest = await stream.read(1)
                except StreamEOF:
                    rest = b""
        finally:
            await stream.close()
        return answer, rest

    for payload in (encode_varint_prefixed(b"\xc1 not msgpack"),
                    encode_varint_prefixed(msgpack.packb(["blocks", 0, 10_000])),
                    encode_varint_prefixed(msgpack.packb(["blocks", -1, 2])),
                    b"\xff\xff\x03" + b"\0" * 8):  # a 64 KiB frame, over the request limit
        answer, rest = run_in_network(b, ask, payload)
        assert rest == b"", "the server closes the stream after answering"
        with pytest.raises(RemoteError, match="malformed request"):
            decode_items(answer, 10)
    # and still answers a good one
    answer, _ = run_in_network(b, ask, encode_varint_prefixed(encode_request(HashesRequest(0, 10))))
    assert decode_items(answer, 10) == a.chain.canonical


# -- operator control and shutdown -----------------------------------------------------------
def test_remove_peer_disconnects_and_stops_redialling_until_added_again(network):
    a = network()
    b = network(bootnodes=(a.address,))
    assert b.service.wait_for_peers(1, WAIT) and a.service.wait_for_peers(1, WAIT)
    assert b.service.remove_peer(a.peer_id) and a.service.remove_peer(b.peer_id)
    assert b.service.wait_for_peers(0, WAIT, exactly=True) and a.service.wait_for_peers(0, WAIT, exactly=True)
    # several redial periods (0.1 s doubling to 1 s) pass without a reconnect
    assert not b.service.wait_for_peers(1, 2.5)
    assert not b.service.remove_peer(a.peer_id)
    assert b.service.add_peer(a.address)
    assert b.service.wait_for_peers(1, WAIT) and a.service.wait_for_peers(1, WAIT)
    assert not b.service.add_peer("/ip4/127.0.0.1/tcp/1")
    assert not b.service.add_peer(b.address)  # ourselves


def open_descriptors() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_stop_is_clean_and_leaves_no_threads(network):
    before = set(threading.enumerate())
    descriptors = open_descriptors()
    a = network()
    b = network(bootnodes=(a.address,))
    assert b.service.wait_for_peers(1, WAIT)
    for node in (b, a):
        started = time.monotonic()
        node.service.stop()
        print(f"stop() took {1000 * (time.monotonic() - started):.0f} ms")
        node.service.stop()  # idempotent
    assert set(threading.enumerate()) <= before
    assert open_descriptors() <= descriptors, "sockets or pipes left open"
    assert a.service.peer_count() == 0 and a.service.peers() == [] and not a.service.publish_block(b"x")
