"""Gossip of blocks and transactions over gossipsub, with the real checks run
before anything is relayed.

Topics (`wire.block_topic`, `wire.transaction_topic`) carry the chain id, so two
networks never mix. Each topic has a validator that hands the message to the
node (`ChainPort.import_block` / `add_transaction`) and maps the outcome:

    ACCEPTED        relay it
    KNOWN           drop it quietly (no relay, no penalty)
    UNKNOWN_PARENT  drop it and fetch the gap from the peer that sent it (sync)
    IGNORED         drop it quietly: valid perhaps, but a side block we do not keep
                    (below the reorg horizon, over the per-height caps), so not relayed
    INVALID         drop it and penalise that peer; repeated invalid blocks ban it

py-libp2p's validators answer only yes or no, and every "no" counts as an invalid
message in its peer scorer; so the library's scoring is left neutral (zero
weights) and penalties are ours (`peers.PeerTable`). Messages reach the
subscriptions only after the validators have done the work, so subscriptions
are drained and ignored: their 32-message buffers may overflow harmlessly.

Parameters chosen for a chain of a block a second and bursts of hundreds of
transactions a second (see `build_router`), and transactions are batched: one
message per `tx_batch_delay` rather than one per transaction, because
py-libp2p queues at most 32 outbound RPCs per peer and drops the rest."""
from __future__ import annotations

import logging
from collections.abc import Callable

import trio
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.basic_host import BasicHost
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.score import ScoreParams

from node.p2p.bridge import AsyncPort, PortError
from node.p2p.config import P2PConfig
from node.p2p.peers import PeerTable
from node.p2p.port import Outcome
from node.p2p.wire import (
    WireError,
    block_topic,
    decode_transaction_batch,
    encode_transaction_batch,
    transaction_topic,
)
from vm.limits import MAX_BLOCK_BYTES, MAX_GOSSIP_MESSAGE

log = logging.getLogger("gridnode.p2p")

PUBLISH_QUEUE = 8192
"""Blocks and transactions waiting to be published; beyond it, publishing drops (gossip may)."""
BATCH_OVERHEAD = 16
"""Bytes of msgpack framing allowed per transaction when sizing a batch."""


def build_router(config: P2PConfig) -> GossipSub:
    """Gossipsub tuned for a small permissioned network carrying a chain.

    * /meshsub/1.1.0 only: 1.2 adds an IDONTWANT control message per received
      message per mesh peer, which doubles the load on py-libp2p's 32-slot
      outbound queue for little gain in networks of tens of nodes.
    * D=6, D_low=4, D_high=12: the usual mesh degree; in a network of up to 7
      nodes every peer is in the mesh, so gossip is a flood with dedup.
    * heartbeat 1 s (library default 120 s): mesh repair and IHAVE gossip must
      keep pace with one block a second.
    * gossip window 3 / history 5 heartbeats: a peer that missed a message hears
      of it within about 3 s and can fetch it for 5 s; older gaps are sync's job.
    * rate limit 1000 messages/s per topic per peer (library default 10, and it
      counts our own publishes): a block a second plus transaction batches.
    * no peer exchange, no adaptive gossip, no IP-diversity "eclipse protection":
      peers are admitted by key, often share a subnet or a host, and py-libp2p's
      adaptive mode raises a poor-health heartbeat to 30-60 s.
    """
    return GossipSub(
        protocols=[PROTOCOL_ID_V11],
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=config.gossip_heartbeat,
        heartbeat_initial_delay=0.1,
        gossip_window=3,
        gossip_history=5,
        do_px=False,
        score_params=ScoreParams(),
        adaptive_gossip_enabled=False,
        spam_protection_enabled=True,
        max_messages_per_topic_per_second=1000.0,
        eclipse_protection_enabled=False,
    )


class Gossip:
    def __init__(self, host: BasicHost, port: AsyncPort, peers: PeerTable, config: P2PConfig, *,
                 penalize: Callable[[str, float, str], None],
                 request_gap_fill: Callable[[str, int | None], None]) -> None:
        self._host = host
        self._port = port
        self._peers = peers
        self._config = config
        self._penalize = penalize
        self._request_gap_fill = request_gap_fill
        self.block_topic = block_topic(config.chain_id)
        self.transaction_topic = transaction_topic(config.chain_id)
        self.router = build_router(config)
        self.pubsub = Pubsub(
            host, self.router,
            strict_signing=True,
            max_concurrent_validator_count=32,
            validation_timeout=config.gossip_validation_timeout,
            allowed_topics={self.block_topic, self.transaction_topic},
        )
        self._send, self._receive = trio.open_memory_channel[tuple[str, bytes]](PUBLISH_QUEUE)

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Join the topics, then publish what the node hands us until cancelled.
        Runs while `pubsub` and `router` run as services."""
        await self.pubsub.wait_until_ready()
        self.pubsub.set_topic_validator(self.block_topic, self._validate_block, True)
        self.pubsub.set_topic_validator(self.transaction_topic, self._validate_transactions, True)
        blocks = await self.pubsub.subscribe(self.block_topic)
        transactions = await self.pubsub.subscribe(self.transaction_topic)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._drain, blocks)
            nursery.start_soon(self._drain, transactions)
            nursery.start_soon(self._publish_loop)
            task_status.started()

    def close(self) -> None:
        """Stop the seen-message cache's sweeper thread. py-libp2p's Pubsub starts it in its
        constructor (pubsub.py:453 → tools/timed_cache/base_timed_cache.py:25) and never
        stops it, so without this every stopped network would leave a thread behind."""
        self.pubsub.seen_messages.stop()

    def has_stream(self, peer_id: str) -> bool:
        return ID.from_base58(peer_id) in self.pubsub.peers

    # -- publishing (enqueue on the trio thread; see bridge.submit) ----------------
    def enqueue_block(self, encoded_block: bytes) -> None:
        self._enqueue(self.block_topic, encoded_block)

    def enqueue_transaction(self, raw_transaction: bytes) -> None:
        self._enqueue(self.transaction_topic, raw_transaction)

    def _enqueue(self, topic: str, data: bytes) -> None:
        try:
            self._send.send_nowait((topic, data))
        except trio.WouldBlock:
            log.warning("gossip publish queue full; dropped a message on %s (sync will cover blocks)", topic)

    async def _publish_loop(self) -> None:
        batch = _TransactionBatch(self._config.tx_batch_max)
        while True:
            item = None
            if batch:
                with trio.move_on_at(batch.deadline):
                    item = await self._receive.receive()
                if item is None:
                    await self._publish(self.transaction_topic, batch.flush())
                    continue
            else:
                item = await self._receive.receive()
            topic, data = item
            if topic == self.block_topic:
                await self._publish(topic, data)
                continue
            if batch and not batch.fits(data):
                await self._publish(self.transaction_topic, batch.flush())
            batch.add(data, trio.current_time() + self._config.tx_batch_delay)
            if batch.full:
                await self._publish(self.transaction_topic, batch.flush())

    async def _publish(self, topic: str, data: bytes) -> None:
        try:
            await self.pubsub.publish(topic, data)
        except BaseLibp2pError as exc:
            log.warning("could not publish on %s: %s", topic, exc)

    # -- validators (run by pubsub before anything is relayed) ------------------------
    async def _validate_block(self, forwarder: ID, message: rpc_pb2.Message) -> bool:
        if forwarder == self._host.get_id():
            return True  # our own: the node produced or imported it already
        peer_id = forwarder.to_base58()
        if not self._peers.is_counted(peer_id):
            return False  # no handshake (yet): ignore
        if len(message.data) > MAX_BLOCK_BYTES:  # before crossing to the node's loop
            self._penalize(peer_id, self._config.penalty_invalid_block,
                           f"block message of {len(message.data)} bytes exceeds {MAX_BLOCK_BYTES}")
            return False
        result = await self._ask_port(self._port.import_block, message.data, peer_id)
        if result is None:
            return False
        if result.outcome is Outcome.ACCEPTED:
            return True
        if result.outcome is Outcome.UNKNOWN_PARENT:
            log.debug("block %s from %s has an unknown parent; fetching the gap", result.number, peer_id)
            self._request_gap_fill(peer_id, result.number)
        elif result.outcome is Outcome.INVALID:
            self._penalize(peer_id, self._config.penalty_invalid_block, f"invalid block {result.number}: {result.reason}")
        elif result.outcome is Outcome.IGNORED:  # surplus, not wrong: we would not store it, so we do not relay it
            log.debug("block %s from %s not kept: %s", result.number, peer_id, result.reason)
        return False

    async def _validate_transactions(self, forwarder: ID, message: rpc_pb2.Message) -> bool:
        if forwarder == self._host.get_id():
            return True
        peer_id = forwarder.to_base58()
        if not self._peers.is_counted(peer_id):
            return False
        try:
            raw_transactions = decode_transaction_batch(message.data)
        except WireError as exc:
            self._penalize(peer_id, self._config.penalty_invalid_block, f"malformed transaction batch: {exc}")
            return False
        results = await self._ask_port(self._port.add_transactions, raw_transactions, peer_id)
        if results is None:
            return False
        accepted = [raw for raw, result in zip(raw_transactions, results, strict=True) if result.outcome is Outcome.ACCEPTED]
        invalid = [result for result in results if result.outcome is Outcome.INVALID]
        if invalid:
            self._penalize(peer_id, self._config.penalty_invalid_transaction * len(invalid),
                           f"{len(invalid)} invalid transactions, e.g. {invalid[0].reason}")
            # Relay only what we accepted, so no node forwards what it found invalid.
            for raw in accepted:
                self.enqueue_transaction(raw)
            return False
        return bool(accepted)

    async def _ask_port(self, method, argument, peer_id: str):
        """The port's answer, or None if the node could not give one (then the message
        is dropped unrelayed; the failure is logged where it happened)."""
        try:
            return await method(argument)
        except PortError as exc:
            log.debug("gossip message from %s not checked: %s", peer_id, exc)
            return None

    async def _drain(self, subscription) -> None:
        """Validators did the work; reading the subscription only keeps us in the topic."""
        async for _ in subscription:
            continue


class _TransactionBatch:
    def __init__(self, max_items: int) -> None:
        self._max_items = max_items
        self._items: list[bytes] = []
        self._size = 0
        self.deadline = 0.0

    def __bool__(self) -> bool:
        return bool(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self._max_items

    def fits(self, raw: bytes) -> bool:
        return self._size + len(raw) + BATCH_OVERHEAD <= MAX_GOSSIP_MESSAGE

    def add(self, raw: bytes, deadline: float) -> None:
        if not self._items:
            self.deadline = deadline
        self._items.append(raw)
        self._size += len(raw) + BATCH_OVERHEAD

    def flush(self) -> bytes:
        encoded = encode_transaction_batch(self._items)
        self._items, self._size = [], 0
        return encoded
