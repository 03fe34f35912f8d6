"""The fault harness's byzantine producers (node/byzantine.py): each mode's block reaches an
honest follower, which refuses it for the mode's reason or, for an equivocation, stores both
blocks and records the pair; the byzantine producer never commits what it announces."""
from __future__ import annotations

import asyncio

import pytest

from consensus.engine import Signer
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document, poeg_genesis_document
from node.byzantine import Misbehaviour
from node.chain import Chain, ImportStatus
from node.evidence import EvidenceReporter
from node.mempool import Mempool
from node.producer import BlockProducer, produce_block
from node.rpc.errors import RpcError
from node.rpc.harness import HarnessApi
from node.store import Store
from scored_net import VALIDATORS
from vm.blocks import Block, InvalidBlock

A, B = Signer(b"\x0a" * 32), Signer(b"\x0b" * 32)
ANNOUNCE_SECONDS = 10.0
"""Bound on waiting for the producer's announcements (blocks come every block time, 1 s)."""


def open_chain(path, signers: list[Signer]) -> Chain:
    document = devnet_genesis_document(signers[0].address)
    document["consensus"]["signers"] = [s.address.to_checksum() for s in signers]
    genesis = Genesis.from_json(document)
    return Chain(Store(str(path)), genesis, genesis.create_engine())


@pytest.fixture
def pair(tmp_path):
    """A byzantine producer's chain and an honest follower's, both with signers A and B."""
    chains = [open_chain(tmp_path / name, [A, B]) for name in ("byzantine", "honest")]
    yield chains
    for chain in chains:
        chain.store.close()


def announced(chain: Chain, mode: str, count: int, signer: Signer = A) -> list[Block]:
    """Run `signer`'s producer in `mode` until it has announced `count` blocks."""
    blocks: list[Block] = []
    misbehaviour = Misbehaviour()
    misbehaviour.set(mode)
    producer = BlockProducer(chain, Mempool(chain.chain_id, chain.genesis.gas_limit), signer, announce=blocks.append,
                             misbehaviour=misbehaviour)

    async def until_enough() -> None:
        task = asyncio.create_task(producer.run())
        try:
            async with asyncio.timeout(ANNOUNCE_SECONDS):
                while len(blocks) < count:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(until_enough())
    assert misbehaviour.counts[mode] >= 1
    return blocks


def test_an_equivocation_is_stored_and_recorded_by_the_honest_node(pair):
    byzantine, honest = pair
    block, twin = announced(byzantine, "equivocate", 2)
    assert (block.header.number, block.header.producer) == (twin.header.number, twin.header.producer)
    assert block.hash != twin.hash and byzantine.head.hash == block.hash  # it keeps the first one itself
    assert honest.import_block(block) is ImportStatus.HEAD
    assert honest.import_block(twin) in (ImportStatus.HEAD, ImportStatus.SIDE)  # one weight: a tie-break
    assert all(honest.header_by_hash(b.hash) is not None for b in (block, twin))
    reporter = EvidenceReporter(honest, None, None)  # no signing key: it records, it sends nothing
    reporter.check(twin.header)
    [seen] = reporter.equivocations
    assert seen["number"] == 1 and seen["producer"] == A.address.to_checksum()
    assert sorted(seen["hashes"]) == sorted("0x" + b.hash.hex() for b in (block, twin))
    reporter.check(twin.header)
    assert len(reporter.equivocations) == 1  # once per pair


@pytest.mark.parametrize("mode, reason", [("bad-state-root", "state root mismatch"),
                                          ("bad-seal", "seal|signature")])
def test_a_damaged_block_is_refused_and_never_committed_by_its_producer(pair, mode, reason):
    byzantine, honest = pair
    [bad] = announced(byzantine, mode, 1)
    assert byzantine.head.number == 0
    with pytest.raises(InvalidBlock, match=reason):
        honest.import_block(bad)
    assert honest.head.number == 0


def test_a_block_out_of_turn_is_refused(pair):
    byzantine, honest = pair
    first = produce_block(byzantine, Mempool(byzantine.chain_id, byzantine.genesis.gas_limit), A,
                          byzantine.head.timestamp + 1)
    honest.import_block(first.block)
    [again] = announced(byzantine, "wrong-turn", 1)  # A sealed block 1: block 2 is not A's to seal
    assert again.header.number == 2 and byzantine.head.number == 1
    with pytest.raises(InvalidBlock, match="signed too recently"):
        honest.import_block(again)


def test_a_wrong_turn_under_a_scored_engine_is_refused_not_a_lawful_fallback(scored_pair):
    """The chain's clock is far past its genesis: a block stamped now would be the order's
    fallback, on time. A wrong turn is stamped at the first producer's earliest time instead."""
    byzantine, honest = scored_pair
    second = byzantine.engine.schedule(byzantine.state())[1]
    [out_of_turn] = announced(byzantine, "wrong-turn", 1, signer_of(second))
    assert out_of_turn.header.producer == second and byzantine.head.number == 0
    with pytest.raises(InvalidBlock, match="wrong producer for the slot"):
        honest.import_block(out_of_turn)


def test_a_wrong_turn_by_the_drawn_producer_comes_a_second_early_then_its_lawful_block(scored_pair):
    """A scored engine's drawn producer holds every turn of its slot: its wrong turn is one taken
    before it came, once a parent; the block on time follows."""
    byzantine, honest = scored_pair
    first = byzantine.engine.schedule(byzantine.state())[0]
    early, lawful, *_ = announced(byzantine, "wrong-turn", 2, signer_of(first))
    assert early.header.number == lawful.header.number == 1 and early.header.timestamp < lawful.header.timestamp
    with pytest.raises(InvalidBlock, match="may seal at .* wrong producer for the slot"):
        honest.import_block(early)
    assert honest.import_block(lawful) is ImportStatus.HEAD and byzantine.header_by_hash(lawful.hash) is not None


@pytest.fixture
def scored_pair(tmp_path):
    """A byzantine PoEG validator's chain and an honest follower's (two validators, genesis at time 0)."""
    genesis = Genesis.from_json(poeg_genesis_document([v.address for v in VALIDATORS[:2]], prosumers=2))
    chains = [Chain(Store(str(tmp_path / name)), genesis, genesis.create_engine()) for name in ("byzantine", "honest")]
    yield chains
    for chain in chains:
        chain.store.close()


def signer_of(address) -> Signer:
    return next(v for v in VALIDATORS if v.address == address)


def test_a_withholding_producer_seals_nothing_and_counts_each_turn_it_lets_pass_once(pair):
    byzantine, _ = pair
    misbehaviour, blocks = Misbehaviour(), []
    misbehaviour.set("withhold")
    producer = BlockProducer(byzantine, Mempool(byzantine.chain_id, byzantine.genesis.gas_limit), A,
                             announce=blocks.append, misbehaviour=misbehaviour)

    async def three_block_times() -> None:
        task = asyncio.create_task(producer.run())
        await asyncio.sleep(3 * byzantine.genesis.block_time)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(three_block_times())
    assert blocks == [] and byzantine.head.number == 0
    assert misbehaviour.counts == {"withhold": 1}  # one parent, one turn, however long it waited


def test_the_harness_api_checks_what_it_is_given():
    from node.clock import Clock

    clock, misbehaviour = Clock(), Misbehaviour()
    api = HarnessApi(clock, misbehaviour)
    assert api.harness_setClockOffset(-20) == -20.0 and clock.offset == -20.0
    assert api.harness_setByzantine("withhold") == "withhold" and misbehaviour.mode == "withhold"
    assert api.harness_status() == {"clockOffset": -20.0, "byzantine": "withhold", "sent": {}}
    for call, value in ((api.harness_setClockOffset, 10**6), (api.harness_setClockOffset, "soon"),
                        (api.harness_setByzantine, "lie")):
        with pytest.raises(RpcError):
            call(value)
    api.harness_setByzantine(None)
    assert misbehaviour.mode is None


def test_a_lying_sync_peer_serves_a_block_the_syncing_node_refuses(pair):
    from node.network_port import NodeChainPort
    from vm.blocks import parse_block

    byzantine, honest = pair
    mempool = Mempool(byzantine.chain_id, byzantine.genesis.gas_limit)
    produce_block(byzantine, mempool, A, byzantine.head.timestamp + 1)
    misbehaviour = Misbehaviour()
    port = NodeChainPort(byzantine, None, misbehaviour=misbehaviour)
    truthful = port.blocks(1, 1)
    misbehaviour.set("lying-sync")
    [lied] = port.blocks(1, 1)
    assert lied != truthful[0] and misbehaviour.counts == {"lying-sync": 1}
    answer = NodeChainPort(honest, None).import_block(lied)  # what sync hands the syncing node's port
    assert answer.outcome.name == "INVALID" and "seal" in answer.reason
    header, _ = parse_block(truthful[0])
    assert NodeChainPort(honest, None, EvidenceReporter(honest, None, None)).import_block(truthful[0]).outcome.name \
        == "ACCEPTED" and honest.head.hash == header.hash
