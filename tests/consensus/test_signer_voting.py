"""Admins vote PoA signers in and out by transaction; the change takes effect at
the next checkpoint, identically on a node that only imports the blocks."""
from __future__ import annotations

from dataclasses import replace

import eth_abi
import pytest
from consensus.engine import Signer
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from helpers import DEV_KEYS
from node.chain import Chain
from node.mempool import Mempool
from node.producer import produce_block
from node.store import Store
from vm.blocks import Block, InvalidBlock
from vm.crypto import keccak256
from vm.native.signers import SIGNERS
from vm.transactions import decode_transaction

FIRST, SECOND = Signer(b"\x31" * 32), Signer(b"\x32" * 32)
ADMINS = [Account.from_key(k) for k in DEV_KEYS[:3]]
EPOCH = 4


def open_chain(path) -> Chain:
    document = devnet_genesis_document(FIRST.address)
    document["consensus"]["epoch"] = EPOCH
    document["admins"] = [a.address for a in ADMINS]
    genesis = Genesis.from_json(document)
    return Chain(Store(str(path)), genesis, genesis.create_engine())


def vote(admin, signer: Signer, authorize: bool, nonce: int):
    data = keccak256(b"propose(address,bool)")[:4] + eth_abi.encode(["address", "bool"],
                                                                     [signer.address.to_checksum(), authorize])
    return decode_transaction(bytes(admin.sign_transaction({
        "to": SIGNERS.address.to_checksum(), "data": data, "value": 0, "gas": 200_000, "chainId": 1337,
        "nonce": nonce, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}).raw_transaction))


def seal(chain: Chain, signer: Signer, txs=()) -> Block:
    mempool = Mempool(chain.chain_id, chain.genesis.gas_limit)
    for tx in txs:
        mempool.add(tx, chain.state(), chain.environment(chain.head, 0, signer.address).base_fee)
    executed = produce_block(chain, mempool, signer, chain.head.timestamp + 1)
    assert {tx.hash for tx in executed.block.transactions} == {tx.hash for tx in txs}
    assert all(r.succeeded for r in executed.receipts)
    return executed.block


@pytest.fixture
def chains(tmp_path):
    producer, follower = open_chain(tmp_path / "p"), open_chain(tmp_path / "f")
    yield producer, follower
    producer.store.close()
    follower.store.close()


def test_majority_vote_adds_then_removes_a_signer_at_checkpoints(chains):
    producer, follower = chains
    engine = producer.engine
    blocks = [seal(producer, FIRST, [vote(ADMINS[0], SECOND, True, 0)])]
    assert SIGNERS.current(producer.state()) == [FIRST.address], "one vote of three is not a majority"
    blocks.append(seal(producer, FIRST, [vote(ADMINS[1], SECOND, True, 0)]))
    assert sorted(SIGNERS.current(producer.state())) == sorted([FIRST.address, SECOND.address])
    assert engine.validators(producer, producer.head) == [FIRST.address], "not before the checkpoint"
    blocks.append(seal(producer, FIRST))
    checkpoint = seal(producer, FIRST)
    blocks.append(checkpoint)
    assert checkpoint.header.number == EPOCH and len(checkpoint.header.extra_data) == 40
    assert set(engine.validators(producer, producer.head)) == {FIRST.address, SECOND.address}

    blocks.append(seal(producer, SECOND))  # the new signer seals; FIRST may not twice in ⌊2/2⌋+1
    blocks.append(seal(producer, FIRST, [vote(ADMINS[0], SECOND, False, 1), vote(ADMINS[2], SECOND, False, 0)]))
    blocks.append(seal(producer, SECOND))
    blocks.append(seal(producer, FIRST))  # checkpoint 8: SECOND is out
    assert producer.head.number == 2 * EPOCH
    assert engine.validators(producer, producer.head) == [FIRST.address]

    for block in blocks:
        follower.import_block(block)
    assert follower.head.hash == producer.head.hash
    assert follower.engine.validators(follower, follower.head) == [FIRST.address]


def test_forged_checkpoint_list_is_rejected(chains):
    producer, follower = chains
    for _ in range(EPOCH):
        block = seal(producer, FIRST)
    for number in range(1, EPOCH):
        follower.import_block(producer.block(producer.header_by_number(number).hash))
    padded = replace(block.header, extra_data=block.header.extra_data + SECOND.address)
    forged = Block(padded.with_seal(FIRST.sign(padded.seal_hash)), ())
    with pytest.raises(InvalidBlock, match="engine fields differ"):
        follower.import_block(forged)
    follower.import_block(block)
    assert follower.head.hash == producer.head.hash


def test_votes_without_a_majority_are_discarded_at_the_checkpoint(chains):
    """As in Clique: a vote lives for one epoch; after the checkpoint it must be cast again."""
    producer, follower = chains
    blocks = [seal(producer, FIRST, [vote(ADMINS[0], SECOND, True, 0)])]
    assert SIGNERS.votes_for(producer.state(), SECOND.address, True) == 1
    while producer.head.number < EPOCH - 1:
        blocks.append(seal(producer, FIRST))
    assert SIGNERS.votes_for(producer.state(), SECOND.address, True) == 1, "kept until the checkpoint"
    blocks.append(seal(producer, FIRST))  # the checkpoint
    assert SIGNERS.votes_for(producer.state(), SECOND.address, True) == 0
    # One new vote is again one of three: no majority, so the stale vote did not count.
    blocks.append(seal(producer, FIRST, [vote(ADMINS[1], SECOND, True, 0)]))
    assert SIGNERS.current(producer.state()) == [FIRST.address]
    assert SIGNERS.votes_for(producer.state(), SECOND.address, True) == 1
    for block in blocks:
        follower.import_block(block)
    assert follower.head.hash == producer.head.hash
