"""A sync round is bounded, must make progress, and is judged against the peer's claim:
a lying peer is penalised and passed over, and the honest peer is then used.

The synchronizer runs on its own (no libp2p): its port is a toy chain and its client
answers for fake peers. A block is msgpack([number, parent hash, payload]) and fork
choice is "longest", as in test_network.py's fake."""
from __future__ import annotations

import time
from pathlib import Path

import msgpack
import pytest
import trio

from consensus.engine import Signer
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from node import network_port
from node.chain import Chain
from node.mempool import Mempool
from node.p2p import sync
from node.p2p.config import P2PConfig
from node.p2p.peers import PeerTable
from node.p2p.port import ChainStatus, ImportResult, Outcome
from node.p2p.sync import FALSE_CLAIM_PENALTY, Synchronizer
from node.producer import produce_block
from node.store import Store
from vm.crypto import keccak256

CHAIN_ID = 1337
GENESIS = msgpack.packb([0, bytes(32), b"genesis"])
ENORMOUS = 10**30
TEST_DEADLINE = 20.0
"""Generous for a loaded machine; the old code never finished these tests at all."""


class ToyChain:
    def __init__(self) -> None:
        self.store = {keccak256(GENESIS): GENESIS}
        self.canonical = [keccak256(GENESIS)]

    def extend(self, count: int, tag: bytes) -> None:
        for _ in range(count):
            block = msgpack.packb([len(self.canonical), self.canonical[-1], tag])
            self.store[keccak256(block)] = block
            self.canonical.append(keccak256(block))

    def copy(self) -> ToyChain:
        twin = ToyChain()
        twin.store, twin.canonical = dict(self.store), list(self.canonical)
        return twin

    def status(self) -> ChainStatus:
        head = len(self.canonical) - 1
        return ChainStatus(CHAIN_ID, self.canonical[0], head, self.canonical[-1], head)

    def import_block(self, encoded: bytes, durable: bool = True) -> ImportResult:
        number, parent, _ = msgpack.unpackb(encoded)
        block_hash = keccak256(encoded)
        if block_hash in self.store:
            return ImportResult(Outcome.KNOWN, "", number)
        if parent not in self.store:
            return ImportResult(Outcome.UNKNOWN_PARENT, "", number)
        self.store[block_hash] = encoded
        if number == len(self.canonical) and parent == self.canonical[-1]:
            self.canonical.append(block_hash)
        return ImportResult(Outcome.ACCEPTED, "", number)

    def encoded(self, start: int, count: int) -> list[bytes]:
        return [self.store[block_hash] for block_hash in self.canonical[start:start + count]]


class DirectPort:
    """The synchronizer's view of our chain (AsyncPort's methods), without a bridge."""

    def __init__(self, chain: ToyChain) -> None:
        self.chain = chain
        self.imported = 0

    async def status(self) -> ChainStatus:
        return self.chain.status()

    async def import_blocks(self, encoded_blocks) -> list[ImportResult]:
        results = []
        for encoded in encoded_blocks:
            self.imported += 1
            results.append(self.chain.import_block(encoded))
            if results[-1].outcome not in (Outcome.ACCEPTED, Outcome.KNOWN):
                break
        return results

    async def canonical_hashes(self, numbers) -> list[bytes | None]:
        return [self.chain.canonical[n] if n < len(self.chain.canonical) else None for n in numbers]


class HonestPeer:
    def __init__(self, chain: ToyChain) -> None:
        self.chain = chain

    def status(self) -> ChainStatus:
        return self.chain.status()

    async def hashes(self, start: int, count: int, step: int) -> list[bytes]:
        return self.chain.canonical[start::step][:count]

    async def blocks(self, start: int, count: int) -> list[bytes]:
        return self.chain.encoded(start, count)


class ResendingLiar:
    """Claims an enormous weight, agrees with our hashes, and answers every range request
    with our own first blocks: the old synchronizer asked it for more forever."""

    def __init__(self, ours: ToyChain) -> None:
        self.ours = ours

    def status(self) -> ChainStatus:
        return ChainStatus(CHAIN_ID, self.ours.canonical[0], ENORMOUS, keccak256(b"a head it never shows"), ENORMOUS)

    async def hashes(self, start: int, count: int, step: int) -> list[bytes]:
        return self.ours.canonical[start::step][:count]

    async def blocks(self, start: int, count: int) -> list[bytes]:
        return self.ours.encoded(1, count)


class ReplayingLiar:
    """Claims an enormous weight at a new head hash in every status, denies sharing any
    block but genesis, then serves our own chain, correctly numbered, and stops."""

    def __init__(self, ours: ToyChain) -> None:
        self.ours = ours
        self.statuses = 0

    def status(self) -> ChainStatus:
        self.statuses += 1
        return ChainStatus(CHAIN_ID, self.ours.canonical[0], ENORMOUS, keccak256(b"head %d" % self.statuses), ENORMOUS)

    async def hashes(self, start: int, count: int, step: int) -> list[bytes]:
        return [keccak256(b"not ours %d" % n) for n in range(start, start + count * step, step)]

    async def blocks(self, start: int, count: int) -> list[bytes]:
        return self.ours.encoded(start, count)


class FakeClient:
    """SyncClient's two requests, answered by the fake peer of that id. Each request also
    refreshes the peer's status in the table, as the status protocol does every few seconds."""

    def __init__(self, peers: PeerTable, fakes: dict) -> None:
        self.peers = peers
        self.fakes = fakes

    async def hashes(self, peer_id: str, start: int, count: int, step: int = 1) -> list[bytes]:
        return await self._ask(peer_id).hashes(start, count, step)

    async def blocks(self, peer_id: str, start: int, count: int) -> list[bytes]:
        return await self._ask(peer_id).blocks(start, count)

    def _ask(self, peer_id: str):
        self.peers.update_status(peer_id, self.fakes[peer_id].status())
        return self.fakes[peer_id]


class Harness:
    def __init__(self, tmp_path: Path, ours: ToyChain, fakes: dict) -> None:
        self.config = P2PConfig(datadir=tmp_path, chain_id=CHAIN_ID, genesis_hash=ours.canonical[0])
        self.peers = PeerTable(self.config)
        for peer_id, fake in fakes.items():
            self.peers.mark_counted(self.peers.add(peer_id, "outbound", f"/fake/{peer_id}", connection=None),
                                    fake.status())
        self.port = DirectPort(ours)
        self.client = FakeClient(self.peers, fakes)
        self.penalties: list[tuple[str, float, str]] = []
        self.synchronizer = Synchronizer(self.client, self.port, self.peers, self.config, self.penalize)

    def penalize(self, peer_id: str, points: float, reason: str) -> None:
        self.penalties.append((peer_id, points, reason))

    def sync_until(self, done) -> None:
        """Run the synchronizer until `done()` holds (checked at every scheduling point)."""
        async def main():
            with trio.fail_after(TEST_DEADLINE):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.synchronizer.run)
                    while not done():
                        await trio.sleep(0)
                    nursery.cancel_scope.cancel()

        trio.run(main)

    def penalised(self, peer_id: str) -> list[str]:
        return [reason for penalised, _, reason in self.penalties if penalised == peer_id]


def chains(ours_length: int, honest_extra: int) -> tuple[ToyChain, ToyChain]:
    ours = ToyChain()
    ours.extend(ours_length, b"shared")
    honest = ours.copy()
    honest.extend(honest_extra, b"honest")
    return ours, honest


def test_a_peer_resending_blocks_we_have_ends_its_round_and_the_honest_peer_is_used(tmp_path):
    ours, honest = chains(20, 30)
    harness = Harness(tmp_path, ours, {"liar": ResendingLiar(ours), "honest": HonestPeer(honest)})
    harness.sync_until(lambda: ours.canonical == honest.canonical)
    [reason] = harness.penalised("liar")
    assert reason == "sync answer out of order: block 1 where 21 was due"
    assert harness.penalised("honest") == []
    assert harness.port.imported == 20 + 30  # one answer from the liar, then the honest peer's blocks


@pytest.mark.parametrize("round_blocks,ending", [
    (8192, "it had no block 21"),  # gave all it had
    (10, "the round's 10 blocks are used"),  # a whole round of blocks we had
])
def test_a_peer_replaying_our_chain_short_of_its_claim_is_penalised_and_passed_over(tmp_path, monkeypatch,
                                                                                     round_blocks, ending):
    monkeypatch.setattr(sync, "SYNC_ROUND_MAX_BLOCKS", round_blocks)
    ours, honest = chains(20, 30)
    harness = Harness(tmp_path, ours, {"liar": ReplayingLiar(ours), "honest": HonestPeer(honest)})
    harness.sync_until(lambda: ours.canonical == honest.canonical)
    [reason] = harness.penalised("liar")
    assert reason.startswith(f"claimed weight {ENORMOUS} at block {ENORMOUS}, but {ending}")
    assert harness.penalised("honest") == []
    assert [(peer_id, points) for peer_id, points, _ in harness.penalties] == [("liar", FALSE_CLAIM_PENALTY)]


def test_an_honest_sync_longer_than_a_round_continues_without_penalty(tmp_path, monkeypatch):
    monkeypatch.setattr(sync, "SYNC_ROUND_MAX_BLOCKS", 64)
    ours, honest = chains(5, 300)
    harness = Harness(tmp_path, ours, {"honest": HonestPeer(honest)})
    harness.sync_until(lambda: ours.canonical == honest.canonical)
    assert harness.penalties == []
    assert harness.port.imported == 300  # no block fetched twice: each round starts where the last ended


@pytest.mark.parametrize("answer,reason", [
    (lambda chain, start, count: chain.encoded(start + 1, count), "block 5 where 4 was due"),
    (lambda chain, start, count: chain.encoded(start, 3) + chain.encoded(start, 1), "block 4 where 7 was due"),
    (lambda chain, start, count: chain.encoded(start, count + 1), "129 blocks in answer to a request for 128"),
])
def test_an_answer_not_numbered_from_the_request_is_malformed(tmp_path, answer, reason):
    ours, honest = chains(3, 200)

    class Skewed(HonestPeer):
        async def blocks(self, start: int, count: int) -> list[bytes]:
            return answer(self.chain, start, count)

    harness = Harness(tmp_path, ours, {"skewed": Skewed(honest)})
    harness.sync_until(lambda: harness.penalties)
    [(peer_id, points, given)] = harness.penalties
    assert peer_id == "skewed" and points == harness.config.penalty_invalid_block and reason in given


# -- the serving side ----------------------------------------------------------------------
def test_the_node_stops_encoding_blocks_at_the_response_byte_cap(tmp_path, monkeypatch):
    signer = Signer(b"\x07" * 32)
    genesis = Genesis.from_json(devnet_genesis_document(signer.address))
    chain = Chain(Store(str(tmp_path / "server")), genesis, genesis.create_engine())
    for _ in range(10):
        produce_block(chain, Mempool(chain.chain_id, genesis.gas_limit), signer, chain.head.timestamp + 1)
    size = len(chain.block(chain.head.hash).encode())
    cap = 3 * size + size // 2
    monkeypatch.setattr(network_port, "MAX_BLOCKS_RESPONSE_BYTES", cap)
    looked_up = []
    block = chain.block
    monkeypatch.setattr(chain, "block", lambda block_hash: looked_up.append(block_hash) or block(block_hash))
    answer = network_port.NodeChainPort(chain, intake=None).blocks(1, 10)
    assert len(answer) == len(looked_up) == 3 and sum(map(len, answer)) <= cap
    chain.store.close()


class SlowClockChain(ToyChain):
    """Our chain, on a node whose clock is behind: blocks above `horizon` are stamped ahead of it
    until the clock is put right."""

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.horizon, self.clock_right = horizon, False

    def import_block(self, encoded: bytes, durable: bool = True) -> ImportResult:
        number = msgpack.unpackb(encoded)[0]
        if number > self.horizon and not self.clock_right:
            return ImportResult(Outcome.IGNORED, f"block {number} is stamped 25 s ahead of this node's clock", number,
                                ahead=True)
        return super().import_block(encoded, durable)


def test_a_node_whose_clock_was_behind_asks_again_soon_and_catches_up_once_it_is_right(tmp_path):
    """A round that ends on a block from the future passes the peer over for 2 s, not 30: the
    fault is as likely our clock's (a soak's node stayed 30 s behind after its clock was fixed).
    Each such round in a row doubles it (up to 30 s): a forged future header costs nothing."""
    ours = SlowClockChain(horizon=25)
    ours.extend(25, b"shared")
    honest = ours.copy()
    honest.extend(15, b"honest")
    harness = Harness(tmp_path, ours, {"honest": HonestPeer(honest)})
    synchronizer = harness.synchronizer
    harness.sync_until(lambda: "honest" in synchronizer._backoff)
    assert synchronizer._backoff["honest"] - time.monotonic() <= sync.AHEAD_BACKOFF_SECONDS
    del synchronizer._backoff["honest"]  # its pass-over over, and its chain a block longer: the next round
    honest.extend(1, b"honest")  # ends the same way, and the pass-over after it is twice as long
    harness.peers.update_status("honest", honest.status())
    synchronizer.wake()
    harness.sync_until(lambda: "honest" in synchronizer._backoff)
    waits = synchronizer._backoff["honest"] - time.monotonic()
    assert sync.AHEAD_BACKOFF_SECONDS < waits <= 2 * sync.AHEAD_BACKOFF_SECONDS
    assert harness.penalties == []  # nothing held against the peer
    ours.clock_right = True

    def caught_up() -> bool:
        harness.synchronizer.wake()  # as each status message from a peer does, every few seconds
        return ours.canonical == honest.canonical

    harness.sync_until(caught_up)  # within the test's deadline: it would wait out 30 s before
