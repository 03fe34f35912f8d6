"""The byte budget: the producer never seals a block its peers would refuse, and
importers refuse an oversized block before any of it is decoded or executed."""
from __future__ import annotations

import time

import pytest
from consensus.engine import Signer
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from helpers import DEV_KEYS
from vm import pipeline as pipeline_module
from node.chain import Chain
from node.mempool import Mempool
from node.producer import produce_block
from node.store import Store
from vm.blocks import Block, Header, InvalidBlock, parse_block
from vm.limits import (
    MAX_BLOCK_BYTES,
    MAX_EXTRA_DATA,
    MAX_HEADER_BYTES,
    MAX_SEAL_BYTES,
    MAX_TRANSACTION_SIZE,
    encoded_block_size,
    rlp_string_size,
)
from vm.transactions import decode_transaction
from vm.types import Address, Hash32

SIGNER = Signer(b"\x07" * 32)
SENDERS = [Account.from_key(key) for key in DEV_KEYS[1:4]]
CALLDATA = bytes(MAX_TRANSACTION_SIZE - 200)


def maximal_transaction(sender, nonce: int, tip: int = 10**9):
    return decode_transaction(bytes(sender.sign_transaction({
        "to": "0x" + "22" * 20, "value": 1, "data": CALLDATA, "gas": 21_000 + 4 * len(CALLDATA), "chainId": 1337,
        "nonce": nonce, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": tip}).raw_transaction))


def small_transfer(sender, nonce: int, tip: int):
    return decode_transaction(bytes(sender.sign_transaction({
        "to": "0x" + "22" * 20, "value": 1, "gas": 21_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": 10**10, "maxPriorityFeePerGas": tip}).raw_transaction))


@pytest.fixture
def chains(tmp_path):
    genesis = Genesis.from_json(devnet_genesis_document(SIGNER.address))
    opened = [Chain(Store(str(tmp_path / name)), genesis, genesis.create_engine()) for name in ("producer", "follower")]
    yield opened
    for chain in opened:
        chain.store.close()


def pool_of(chain: Chain, txs) -> Mempool:
    mempool = Mempool(chain.chain_id, chain.genesis.gas_limit)
    for tx in txs:
        mempool.add(tx, chain.state(), chain.environment(chain.head, 0, SIGNER.address).base_fee)
    return mempool


def produce(chain: Chain, mempool: Mempool) -> Block:
    """Seal a block from the pool, then forget what it included (as the node's intake does)."""
    block = produce_block(chain, mempool, SIGNER, max(chain.head.timestamp + 1, int(time.time()) - 30)).block
    mempool.prune(chain.state())
    return block


def test_the_largest_header_and_a_maximal_transaction_fit_a_block():
    largest = Header(Hash32(b"\xff" * 32), 2**256 - 1, 2**256 - 1, Address(b"\xff" * 20), Hash32(b"\xff" * 32),
                     Hash32(b"\xff" * 32), Hash32(b"\xff" * 32), b"\xff" * 256, 2**256 - 1, 2**256 - 1, 2**256 - 1,
                     2**256 - 1, b"\xff" * MAX_EXTRA_DATA, b"\xff" * MAX_SEAL_BYTES)
    assert len(largest.encode()) == MAX_HEADER_BYTES
    assert Header.decode(largest.encode()) == largest
    assert encoded_block_size(MAX_HEADER_BYTES, rlp_string_size(MAX_TRANSACTION_SIZE)) <= MAX_BLOCK_BYTES


def test_producer_fills_blocks_by_bytes_and_never_seals_one_over_the_limit(chains):
    producer, follower = chains
    txs = [maximal_transaction(sender, nonce) for sender in SENDERS for nonce in range(6)]
    mempool = pool_of(producer, txs)
    assert sum(len(tx.raw) for tx in txs) > 2 * MAX_BLOCK_BYTES  # gas alone would take all 18 in one block
    blocks = []
    while len(mempool):
        blocks.append(produce(producer, mempool))
        encoded = blocks[-1].encode()
        assert len(encoded) <= MAX_BLOCK_BYTES
        assert len(encoded) == encoded_block_size(len(blocks[-1].header.encode()),
                                                  sum(rlp_string_size(len(tx.raw)) for tx in blocks[-1].transactions))
        follower.import_wire(*parse_block(encoded))  # a peer accepts every one
    assert len(blocks) == 3 and [len(block.transactions) for block in blocks] == [7, 7, 4]
    assert follower.head.hash == producer.head.hash


def test_a_transaction_too_big_for_the_rest_of_the_block_waits_while_a_small_one_fits(chains):
    producer, _ = chains
    alice, bob = SENDERS[0], SENDERS[1]
    big = [maximal_transaction(alice, nonce, tip=5 * 10**9) for nonce in range(8)]
    transfer = small_transfer(bob, 0, tip=10**9)  # pays less: tried after every big one
    mempool = pool_of(producer, big + [transfer])
    block = produce(producer, mempool)
    assert [tx.hash for tx in block.transactions] == [tx.hash for tx in big[:7]] + [transfer.hash]
    assert big[7].hash in mempool, "left in the pool for the next block"
    assert [tx.hash for tx in produce(producer, mempool).transactions] == [big[7].hash]


def test_an_oversized_block_is_refused_before_any_transaction_is_decoded(chains, monkeypatch):
    producer, follower = chains
    txs = [maximal_transaction(sender, nonce) for sender in SENDERS[:2] for nonce in range(5)]
    with monkeypatch.context() as patched:  # a producer with a larger limit than the protocol's
        patched.setattr(pipeline_module, "MAX_BLOCK_BYTES", 4 * MAX_BLOCK_BYTES)
        oversized = produce(producer, pool_of(producer, txs))
    encoded = oversized.encode()
    assert len(encoded) > MAX_BLOCK_BYTES and len(oversized.transactions) == 10

    def must_not_decode(raw):
        raise AssertionError("a transaction of an oversized block was decoded")

    monkeypatch.setattr(follower, "transaction_from_raw", must_not_decode)
    with pytest.raises(InvalidBlock, match=f"block of {len(encoded)} bytes exceeds {MAX_BLOCK_BYTES}"):
        follower.import_wire(*parse_block(encoded))
    assert follower.head.number == 0
