"""The PoEG engine in process: three validators, twelve prosumers with meter oracles. A producer
settles every slot on chain; a follower imports each block and checks it in integers. Byzantine
producers (an inflated score, an infeasible plan, a plan that is not optimal, a reward that
mints, a missing settlement, the wrong producer) are rejected with the reason; a silent
producer's fallback is accepted and the silent one slashed; equivocation evidence and a
stability challenge slash."""
from __future__ import annotations

import dataclasses
import random

import pytest

from consensus.poeg import certificate as lp
from consensus.poeg import ledger, messages, settlement
from consensus.poeg.ledger import POEG_ADDRESS
from consensus.rules.coalition_lp import coalition_instance
from consensus.scored import evidence
from node.evidence import EvidenceReporter
from node.intake import TransactionIntake
from node.mempool import Mempool
from node.network_port import NodeChainPort
from node.p2p.port import Outcome
from scored_net import VALIDATORS, ScoredNet
from vm.blocks import Block, InvalidBlock
from genesis.devnet import dev_accounts, poeg_genesis_document
from market.contracts.addresses import METERS
from vm.native.contract import encode_call
from vm.transactions import decode_transaction, sign_legacy
from vm.transition import TransactionRejected

SLOT = 10
ACCOUNTS = dev_accounts(40)
PROSUMERS = 12
POST_READING = "postReading(address,uint64,uint256,uint256,uint256)"


class Net(ScoredNet):
    """A PoEG producer and a follower, twelve prosumers with meter oracles."""

    def __init__(self, tmp_path, partition=None) -> None:
        super().__init__(tmp_path, poeg_genesis_document([v.address for v in VALIDATORS], PROSUMERS, SLOT), SLOT)
        if partition is not None:
            self.chain.engine.services = dataclasses.replace(self.chain.engine.services, partition=partition)
        self.rng = random.Random(7)

    def readings(self):
        """Every prosumer's reading for the current slot, signed by its meter oracle."""
        slot = (self.time + 1) // SLOT
        return [self.call(ACCOUNTS[20 + k].private_key, METERS,
                          encode_call(POST_READING, [ACCOUNTS[k + 1].address.to_checksum(), slot,
                                                     self.rng.randint(0, 4000), self.rng.randint(0, 4000), 0]))
                for k in range(PROSUMERS)]

    def run_to_slot_end(self) -> None:
        """Post readings, then make blocks until the next one is due to settle the slot."""
        self.block(self.readings())
        while (self.time + 1) // SLOT == self.chain.head.timestamp // SLOT:
            self.block()

    def run_to_settlement(self):
        self.run_to_slot_end()
        return self.block()


def test_every_slot_settles_and_the_follower_agrees(tmp_path):
    net = Net(tmp_path)
    balance = net.chain.state().get_account(POEG_ADDRESS).balance
    for _ in range(3):
        block = net.run_to_settlement()
        assert [tx.to for tx in block.transactions] == [POEG_ADDRESS]
        assert net.follower.head.hash == net.chain.head.hash
        record = ledger.read_record(net.follower.state())
        assert record.slot == block.header.timestamp // SLOT - 1
        assert sorted(i for c in record.coalitions for i in c) == list(range(PROSUMERS))
        if record.miner is not None:
            first = net.chain.engine.coalition_validator(record.coalitions[record.miner], record.scores)
            assert net.order()[0] == first  # the drawn coalition's validator produces next
    state = net.follower.state()
    paid = sum(ledger.PAID.read(state, POEG_ADDRESS, ACCOUNTS[k + 1].address) for k in range(PROSUMERS))
    assert paid == earned(state) > 0  # the reward is funded by the payers: nothing minted
    assert state.get_account(POEG_ADDRESS).balance == balance
    view = net.chain.engine.status(net.chain, state)
    assert view["producer"] == net.order()[0].to_checksum() and len(view["fallbackOrder"]) == 2


def tampered(net: Net, change) -> None:
    """Make the settling producer post `change(settlement)` instead of its honest settlement,
    with its own checks off, and return the sealed block."""
    engine = net.chain.engine
    honest = engine.system_transactions

    def dishonest(chain, parent, state, env, signer):
        raws = honest(chain, parent, state, env, signer)
        if not raws:
            return raws
        tx = decode_transaction(raws[0])
        posted = change(settlement.decode(tx.data[1:]))
        data = messages.SETTLE + settlement.encode(posted)
        return [sign_legacy(env.chain_id, tx.nonce, env.base_fee, 2_000_000, POEG_ADDRESS, 0, data, signer.private_key)]

    net.run_to_slot_end()
    engine.system_transactions = dishonest
    engine.finalize = lambda *args: None
    return net.block(follow=False)


def _first_trading(posted: settlement.Settlement) -> int:
    return next(k for k, c in enumerate(posted.coalitions) if c.certificate.plan)


def _inflate_score(posted):
    first = posted.coalitions[0]
    entry = dataclasses.replace(first, scores=(first.scores[0] + 1_000,) + first.scores[1:])
    return dataclasses.replace(posted, coalitions=(entry,) + posted.coalitions[1:])


def _infeasible(posted):
    k = _first_trading(posted)
    entry = posted.coalitions[k]
    i, j, wh = entry.certificate.plan[0]
    cert = dataclasses.replace(entry.certificate, plan=((i, j, wh + 10**6),) + entry.certificate.plan[1:])
    return dataclasses.replace(posted, coalitions=posted.coalitions[:k] + (dataclasses.replace(entry, certificate=cert),)
                               + posted.coalitions[k + 1:])


def _not_optimal(posted):
    """Feasible (nobody trades) but not optimal: no duals can prove it."""
    k = _first_trading(posted)
    entry = posted.coalitions[k]
    cert = lp.Certificate((), tuple(0 for _ in entry.certificate.seller_prices),
                          tuple(0 for _ in entry.certificate.buyer_prices), 0)
    return dataclasses.replace(posted, coalitions=posted.coalitions[:k] + (dataclasses.replace(entry, certificate=cert),)
                               + posted.coalitions[k + 1:])


def _mint(posted):
    return dataclasses.replace(posted, shares=(posted.shares[0] + 500,) + posted.shares[1:])


@pytest.mark.parametrize("change, check", [(_inflate_score, "scores"), (_infeasible, "certificate"),
                                           (_not_optimal, "certificate"), (_mint, "reward")],
                         ids=["inflated-score", "infeasible-plan", "not-optimal", "reward-mints"])
def test_a_dishonest_settlement_is_rejected_with_the_reason(tmp_path, change, check):
    net = Net(tmp_path)
    net.run_to_settlement()
    block = tampered(net, change)
    with pytest.raises(InvalidBlock, match=f"settlement rejected: {check}"):
        net.follower.import_block(block)


def test_a_block_due_to_settle_without_the_settlement_is_rejected(tmp_path):
    net = Net(tmp_path)
    net.run_to_slot_end()
    net.chain.engine.system_transactions = lambda *args: []
    net.chain.engine.finalize = lambda *args: None
    block = net.block(follow=False)
    with pytest.raises(InvalidBlock, match="has ended and this block does not settle it"):
        net.follower.import_block(block)


def test_the_wrong_producer_is_rejected(tmp_path):
    net = Net(tmp_path)
    net.block()
    block = net.block(position=1, follow=False)  # the first fallback, without waiting its timeout
    with pytest.raises(InvalidBlock, match="wrong producer for the slot"):
        net.follower.import_block(block)


def earned(state) -> int:
    return sum(ledger.EARNED.read(state, POEG_ADDRESS, ACCOUNTS[k + 1].address) for k in range(PROSUMERS))


def test_a_silent_producer_is_replaced_by_its_fallback_slashed_and_its_reward_withheld(tmp_path):
    net = Net(tmp_path)
    net.run_to_settlement()
    record = ledger.read_record(net.follower.state())
    assert record.miner is not None and record.shares
    silent, fallback = net.order()[0], net.order()[1]
    before = earned(net.follower.state())
    timeout = net.chain.engine.set.timeout
    block = net.block(position=1, delay=timeout)
    assert block.header.producer == fallback and net.follower.head.hash == block.hash
    state = net.follower.state()
    assert net.follower.engine.stake(state, silent) == 0
    assert net.follower.engine.penalties(state)[-1]["reason"] == "silent producer"
    assert net.follower.engine.schedule(state)[0] == fallback and net.follower.engine.schedule(state)[-1] == silent
    withheld = sum(share for _, share in record.shares)
    assert ledger.read_record(state).withheld and earned(state) == before - withheld
    assert ledger.WITHHELD_TOTAL.read(state, POEG_ADDRESS) == withheld
    net.block()  # the chain goes on with the fallback in front
    assert net.follower.head.producer == fallback
    for _ in range(3):  # later slots never draw the slashed validator's coalitions to mine or produce
        net.run_to_settlement()
        record, engine = ledger.read_record(net.follower.state()), net.follower.engine
        if record.miner is not None:
            miner_validator = engine.coalition_validator(record.coalitions[record.miner], record.scores)
            assert miner_validator != silent and net.order()[0] == miner_validator
        assert net.order()[-1] == silent


def test_equivocation_evidence_slashes_once(tmp_path):
    net = Net(tmp_path)
    producer = net.signer()
    first = net.block()
    other = first.header.with_seal(b"")
    other = dataclasses.replace(other, timestamp=other.timestamp + 1)
    twin = other.with_seal(producer.sign(other.seal_hash))
    poster = ACCOUNTS[1]
    data = evidence(first.header, twin)
    base_fee = net.base_fee()
    txs = [decode_transaction(sign_legacy(net.chain.chain_id, n, 2 * base_fee, 200_000, POEG_ADDRESS, 0, data,
                                          poster.private_key)) for n in (0, 1)]
    net.block(txs)
    state = net.follower.state()
    assert net.follower.engine.stake(state, producer.address) == 0
    reasons = [p["reason"] for p in net.follower.engine.penalties(state)]
    assert reasons == [f"equivocation at height {first.header.number}"]  # the second posting changes nothing


def test_sealing_again_at_a_height_on_another_parent_is_not_evidence(tmp_path):
    """After a reorg an honest producer seals a second block at a height it sealed before, on the
    other branch's parent: the engine refuses that pair as evidence and slashes nobody."""
    net = Net(tmp_path)
    producer = net.signer()
    first = net.block()
    other = dataclasses.replace(first.header.with_seal(b""), parent_hash=b"\x11" * 32)
    resealed = other.with_seal(producer.sign(other.seal_hash))
    assert resealed.number == first.header.number and resealed.producer == first.header.producer
    assert net.follower.engine.equivocation_evidence(first.header, resealed) is None
    stake = net.follower.engine.stake(net.follower.state(), producer.address)
    tx = decode_transaction(sign_legacy(net.chain.chain_id, 0, 2 * net.base_fee(), 200_000, POEG_ADDRESS, 0,
                                        evidence(first.header, resealed), ACCOUNTS[1].private_key))
    net.block([tx])
    state = net.follower.state()
    assert net.follower.engine.stake(state, producer.address) == stake
    assert not any(p["reason"].startswith("equivocation") for p in net.follower.engine.penalties(state))


def test_a_stability_challenge_slashes_the_settling_producer(tmp_path):
    net = Net(tmp_path, partition=settlement.singletons)  # a valid but unstable partition
    block = net.run_to_settlement()
    record = ledger.read_record(net.follower.state())
    engine = net.follower.engine
    community = engine.community(net.follower.state(), record.slot)
    found = None
    for a in range(len(record.coalitions)):
        for b in range(a + 1, len(record.coalitions)):
            union = sorted(record.coalitions[a] + record.coalitions[b])
            instance = coalition_instance(community, union, engine.config.loss)
            cert = lp.propose(instance.surplus, instance.deficit, instance.gains)
            if cert.objective >= 2 * 10**6:  # saves at least 2 Wh, so both halves gain
                found = (a, b, cert)
                break
        if found:
            break
    assert found, "the synthetic readings have a profitable pair"
    a, b, cert = found
    poster = ACCOUNTS[1]
    base_fee = net.base_fee()
    tx = decode_transaction(sign_legacy(net.chain.chain_id, 0, 2 * base_fee, 300_000, POEG_ADDRESS, 0,
                                        messages.challenge(record.slot, a, b, cert), poster.private_key))
    net.block([tx])
    state = net.follower.state()
    assert net.follower.engine.stake(state, block.header.producer) == 0
    assert net.follower.engine.penalties(state)[-1]["reason"].startswith(f"unstable settlement of slot {record.slot}")
    assert ledger.read_record(state).challenged


def test_a_validator_that_sees_an_equivocation_sends_the_evidence_itself(tmp_path):
    """The follower, a validator, imports a peer's two blocks at one height by one producer through
    its network port; it sends the evidence, and the next block slashes the equivocator."""
    net = Net(tmp_path)
    net.block()
    producer = net.signer()
    first = net.block(follow=False)
    twin = dataclasses.replace(first.header.with_seal(b""), timestamp=first.header.timestamp + 1)
    twin = twin.with_seal(producer.sign(twin.seal_hash))
    mempool = Mempool(net.follower.chain_id, net.follower.genesis.gas_limit)
    intake = TransactionIntake(net.follower, mempool)
    port = NodeChainPort(net.follower, intake, EvidenceReporter(net.follower, intake, VALIDATORS[2]))
    for block in (first, Block(twin, first.transactions)):
        assert port.import_block(block.encode()).outcome is Outcome.ACCEPTED
    assert len(mempool) == 1  # the evidence, sent once
    (evidence_tx,) = list(mempool.executable(net.follower.state(), net.base_fee()))
    assert evidence_tx.to == POEG_ADDRESS and evidence_tx.sender == VALIDATORS[2].address
    net.block([evidence_tx])
    state = net.follower.state()
    assert net.follower.engine.penalties(state)[-1]["reason"] == f"equivocation at height {first.header.number}"
    assert net.follower.engine.stake(state, producer.address) == 0


def test_malformed_or_misdirected_messages_to_the_engine_change_nothing(tmp_path):
    """Garbage, an unknown kind, truncated evidence, a challenge of a slot never settled, and a
    settlement from someone who is not the producer: each still pays its gas, the block is valid
    on every node, and no stake, penalty or record moves."""
    net = Net(tmp_path)
    net.block()
    poster = ACCOUNTS[1].private_key
    junk = [b"", b"\xff" * 40, b"\x02" + b"\xc0", b"\x02" + b"\x01" * 300,
            messages.challenge(12345, 0, 1, lp.Certificate((), (), (), 0)),
            messages.SETTLE + b"\x00" * 64]
    base_fee = net.base_fee()
    txs = [decode_transaction(sign_legacy(net.chain.chain_id, n, 2 * base_fee, 100_000, POEG_ADDRESS, 0, data, poster))
           for n, data in enumerate(junk)]
    engine, before = net.follower.engine, net.follower.state()
    stakes = [engine.stake(before, v.address) for v in VALIDATORS]
    block = net.block(txs)
    assert len(block.transactions) == len(junk) and net.follower.head.hash == block.hash
    state = net.follower.state()
    assert [engine.stake(state, v.address) for v in VALIDATORS] == stakes
    assert engine.penalties(state) == [] and ledger.read_record(state) is None


def test_a_settlement_orphaned_by_a_reorg_never_reenters_a_pool(tmp_path):
    """Found by `gridnode testnet` (a killed PoEG validator restarted onto another chain): the
    settlement of its abandoned block came back into its pool as an orphan, and its next block
    carried it in a slot that had not ended, which the node's own producer then refused, and the
    node stopped. No pool holds a settlement: the producer makes its own when one is due."""
    net = Net(tmp_path)
    settling = net.run_to_settlement()
    (settlement_tx,) = settling.transactions
    (tmp_path / "elsewhere").mkdir()
    elsewhere = Net(tmp_path / "elsewhere").chain  # a node on another branch, where it was never mined
    intake = TransactionIntake(elsewhere, Mempool(elsewhere.chain_id, elsewhere.genesis.gas_limit))
    with pytest.raises(TransactionRejected, match="settlement is its producer's own"):
        intake.submit(settlement_tx.raw)  # over RPC, gossip or the journal
    intake._after_head_change(elsewhere.head, [settlement_tx])  # as a reorg hands back what it abandoned
    assert len(intake.mempool) == 0
