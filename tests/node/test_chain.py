"""Importing blocks: a second node re-executes a producer's blocks to the same
state, and every kind of forged block is refused without storing anything."""
from __future__ import annotations

import time
from dataclasses import replace

import pytest
from consensus.engine import Signer
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from node.chain import Chain, ImportStatus
from node.mempool import Mempool
from node.producer import produce_block
from node.store import Store
from vm.blocks import Block, InvalidBlock
from vm.merkle import list_root
from vm.transactions import decode_transaction

SIGNER = Signer(b"\x07" * 32)
INTRUDER = Signer(b"\x08" * 32)
ALICE = Account.from_key("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")


def open_chain(path, signer=SIGNER) -> Chain:
    genesis = Genesis.from_json(devnet_genesis_document(signer.address))
    return Chain(Store(str(path)), genesis, genesis.create_engine())


def transfer(nonce: int, value: int = 1):
    return decode_transaction(bytes(ALICE.sign_transaction({
        "to": "0x" + "22" * 20, "value": value, "gas": 21_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9}).raw_transaction))


@pytest.fixture
def producer(tmp_path):
    chain = open_chain(tmp_path / "producer")
    yield chain
    chain.store.close()


@pytest.fixture
def follower(tmp_path):
    chain = open_chain(tmp_path / "follower")
    yield chain
    chain.store.close()


def produce(chain: Chain, txs=()) -> Block:
    mempool = Mempool(chain.chain_id, chain.genesis.gas_limit)
    for t in txs:
        mempool.add(t, chain.state(), chain.environment(chain.head, 0, SIGNER.address).base_fee)
    timestamp = max(chain.head.timestamp + 1, int(time.time()) - 30)
    return produce_block(chain, mempool, SIGNER, timestamp).block


def test_follower_reexecutes_to_the_same_state(producer, follower):
    blocks = [produce(producer, [transfer(0), transfer(1)]), produce(producer), produce(producer, [transfer(2)])]
    for block in blocks:
        follower.import_block(block)
    assert follower.head.hash == producer.head.hash
    assert follower.state_db.root == producer.state_db.root == producer.head.state_root
    assert follower.receipts(blocks[0].hash) == producer.receipts(blocks[0].hash)


def _resealed(block: Block, signer: Signer = SIGNER, **changes) -> Block:
    header = replace(block.header, **changes)
    return Block(header.with_seal(signer.sign(header.seal_hash)), block.transactions)


@pytest.mark.parametrize("forge,reason", [
    (lambda b: _resealed(b, INTRUDER, producer=INTRUDER.address), "not an authorized signer"),
    (lambda b: Block(b.header.with_seal(b"\x01" * 65), b.transactions), "seal|sealed by"),
    (lambda b: _resealed(b, state_root=b"\x11" * 32), "state root mismatch"),
    (lambda b: _resealed(b, difficulty=1), "wrong difficulty"),
    (lambda b: _resealed(b, base_fee=b.header.base_fee + 1), "wrong base fee"),
    (lambda b: _resealed(b, timestamp=int(time.time()) + 3600), "ahead of this node.s clock"),
    (lambda b: _resealed(b, gas_used=b.header.gas_used + 1), "gas used mismatch"),
    (lambda b: Block(b.header, (transfer(5),)), "transactions root mismatch"),
    (lambda b: _resealed(Block(b.header, (transfer(5),)), transactions_root=list_root([transfer(5).raw])),
     "invalid transaction: nonce too high"),
    (lambda b: _resealed(b, number=b.header.number + 1), "number"),
])
def test_forged_blocks_are_refused_and_nothing_is_stored(producer, follower, forge, reason):
    good = produce(producer, [transfer(0)])
    forged = forge(good)
    head = follower.head
    with pytest.raises(InvalidBlock, match=reason):
        follower.import_block(forged)
    assert follower.head == head
    assert follower.header_by_hash(forged.hash) is None
    assert follower.state_db.root == head.state_root
    follower.import_block(good)  # the honest block still goes in afterwards
    assert follower.head.hash == good.hash


def test_reopen_finds_the_same_head_and_state(tmp_path):
    chain = open_chain(tmp_path / "reopen")
    for nonce in range(3):
        produce(chain, [transfer(nonce, value=nonce + 1)])
    head, root = chain.head, chain.state_db.root
    chain.store.close()
    reopened = open_chain(tmp_path / "reopen")
    assert reopened.head == head and reopened.state_db.root == root == head.state_root
    reopened.store.close()


def test_genesis_mismatch_is_refused(tmp_path):
    open_chain(tmp_path / "g").store.close()
    with pytest.raises(ValueError, match="genesis"):
        open_chain(tmp_path / "g", signer=INTRUDER)


def test_historical_state_reads_through_undo_logs(producer):
    from node.history import state_at
    from vm.types import Address

    recipient = Address(b"\x22" * 20)
    produce(producer, [transfer(0, value=7)])
    produce(producer, [transfer(1, value=8)])
    assert state_at(producer, 1).get_balance(recipient) == 7
    assert state_at(producer, 0).get_balance(recipient) == 0
    assert state_at(producer, 2).get_balance(recipient) == 15


BOB = Account.from_key("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a")


def bob_transfer(nonce: int):
    return decode_transaction(bytes(BOB.sign_transaction({
        "to": "0x" + "33" * 20, "value": 5, "gas": 21_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9}).raw_transaction))


def test_heavier_branch_wins_and_orphans_return(tmp_path, follower):
    short = open_chain(tmp_path / "short")
    long = open_chain(tmp_path / "long")
    orphaned = []
    follower.subscribe(lambda head, txs: orphaned.extend(txs))
    short_blocks = [produce(short, [transfer(n)]) for n in range(3)]
    long_blocks = [produce(long, [bob_transfer(n)]) for n in range(4)]
    for block in short_blocks:
        assert follower.import_block(block) is ImportStatus.HEAD
    statuses = [follower.import_block(block) for block in long_blocks]
    assert statuses[0] is ImportStatus.SIDE and statuses[-1] is ImportStatus.HEAD
    assert follower.head.hash == long.head.hash
    assert follower.state_db.root == long.state_db.root
    assert [follower.header_by_number(n).hash for n in range(5)] == [long.header_by_number(n).hash for n in range(5)]
    assert {tx.hash for tx in orphaned} == {tx.hash for b in short_blocks for tx in b.transactions}
    assert follower.transaction_location(short_blocks[0].transactions[0].hash) is None
    header, index = follower.transaction_location(long_blocks[2].transactions[0].hash)
    assert header.hash == long_blocks[2].hash and index == 0
    assert follower.receipts(long_blocks[3].hash) == long.receipts(long_blocks[3].hash)
    follower.store.close()
    reopened = open_chain(tmp_path / "follower")  # the switch was one batch: it reopens whole
    assert reopened.head.hash == long.head.hash and reopened.state_db.root == long.head.state_root
    reopened.store.close()
    short.store.close()
    long.store.close()


def test_invalid_side_branch_is_dropped_when_it_would_win(tmp_path, follower):
    other = open_chain(tmp_path / "other")
    produce(follower, [transfer(0)])
    branch = [produce(other) for _ in range(2)]
    bad = _resealed(branch[1], state_root=b"\x44" * 32)
    assert follower.import_block(branch[0]) in (ImportStatus.SIDE, ImportStatus.HEAD)
    head = follower.head  # either our block or branch[0], by the tie-break: the bad child loses both ways
    with pytest.raises(InvalidBlock, match="state root mismatch"):
        follower.import_block(bad)
    assert follower.head == head and follower.header_by_hash(bad.hash) is None
    other.store.close()


def test_a_forged_seal_is_refused_before_any_sender_is_recovered(producer, follower, monkeypatch):
    """A peer's block is parsed for structure only; its transactions' signatures are
    checked after the seal and parent, so a forged block of many transactions costs
    one seal check, not thousands of signature recoveries."""
    from node.intake import TransactionIntake
    from node.network_port import NodeChainPort
    from node.p2p.port import Outcome
    block = produce(producer, [transfer(n) for n in range(20)])
    forged = Block(block.header.with_seal(INTRUDER.sign(block.header.seal_hash)), block.transactions)
    recovered = []
    monkeypatch.setattr(follower, "transaction_from_raw", lambda raw: recovered.append(raw))
    port = NodeChainPort(follower, TransactionIntake(follower, Mempool(follower.chain_id, follower.genesis.gas_limit)))
    result = port.import_block(forged.encode())
    assert result.outcome is Outcome.INVALID and "sealed by" in result.reason
    assert recovered == [] and follower.head.number == 0
    monkeypatch.undo()
    assert port.import_block(block.encode()).outcome is Outcome.ACCEPTED
    assert follower.head.hash == block.hash
