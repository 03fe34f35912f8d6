"""The path into the pool: a rejected transaction leaves nothing behind, what is kept is
bounded by bytes or by the pool, and a peer relaying unregistered senders pays for it."""
from __future__ import annotations

import time

import eth_abi
import pytest
from consensus.engine import Signer
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from node.cache import ByteLRU
from node.chain import Chain
from node.intake import TransactionIntake, UnregisteredSender
from node.mempool import Mempool, MempoolLimits
from node.network_port import NodeChainPort
from node.p2p.port import Outcome
from node.producer import produce_block
from node.store import Store
from vm.blocks import Block, decode_block
from vm.crypto import keccak256
from vm.native.registry import REGISTRY
from vm.transition import TransactionRejected

SIGNER = Signer(b"\x07" * 32)
ADMIN = Account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
PROSUMERS = [Account.from_key(key) for key in (
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6")]
STRANGER = Account.create()


def signed(account, nonce=0, tip=10**9, data=b"", gas=21_000, to="0x" + "22" * 20) -> bytes:
    return bytes(account.sign_transaction({
        "to": to, "value": 0 if data else 1, "gas": gas, "chainId": 1337, "nonce": nonce, "data": data,
        "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": tip}).raw_transaction)


def large(account, nonce=0) -> bytes:
    """A transaction of about 100 KiB, zero bytes of calldata."""
    return signed(account, nonce, data=b"\0" * 100_000, gas=21_000 + 4 * 100_000)


@pytest.fixture
def chain(tmp_path):
    genesis = Genesis.from_json(devnet_genesis_document(SIGNER.address))
    chain = Chain(Store(str(tmp_path / "chain")), genesis, genesis.create_engine())
    yield chain
    chain.store.close()


def intake_for(chain: Chain, limits: MempoolLimits = MempoolLimits()) -> TransactionIntake:
    return TransactionIntake(chain, Mempool(chain.chain_id, chain.genesis.gas_limit, limits))


def seal(chain: Chain, mempool: Mempool) -> Block:
    return produce_block(chain, mempool, SIGNER, max(chain.head.timestamp + 1, int(time.time()) - 30)).block


def test_rejected_transactions_leave_nothing_behind(chain):
    intake = intake_for(chain)
    for nonce in range(20):
        with pytest.raises(UnregisteredSender, match="sender not registered"):
            intake.submit(large(STRANGER, nonce), from_network=True)
    with pytest.raises(TransactionRejected, match="nonce too high"):
        intake.submit(signed(PROSUMERS[0], nonce=10**6))
    assert len(chain._transactions) == 0 and chain._transactions.bytes == 0
    assert not intake._last_announced and not intake._local
    admitted, _ = intake.submit(large(PROSUMERS[0]))
    assert chain.transaction_from_raw(admitted.raw) is admitted  # decoded once, for the block that carries it
    assert len(chain._transactions) == 1


def test_a_mined_transaction_leaves_the_cache_with_the_pool(chain, tmp_path):
    """A follower keeps a pooled transaction decoded until the block carrying it is imported,
    then lets it go: the cache holds the pool, not the chain's history."""
    follower = Chain(Store(str(tmp_path / "follower")), chain.genesis, chain.genesis.create_engine())
    try:
        producer, follower_intake = intake_for(chain), intake_for(follower)
        raws = [large(account) for account in PROSUMERS]
        for raw in raws:
            producer.submit(raw)
            follower_intake.submit(raw)
        assert len(follower._transactions) == 3
        block = seal(chain, producer.mempool)
        follower.import_block(decode_block(block.encode(), follower.transaction_from_raw))
        assert follower.head.hash == block.hash
        assert len(follower_intake.mempool) == 0 and len(follower._transactions) == 0
        assert follower._transactions.bytes == 0 and len(chain._transactions) == 0
    finally:
        follower.store.close()


def test_a_rejected_block_does_not_fill_the_cache(chain, tmp_path):
    other = Chain(Store(str(tmp_path / "other")), chain.genesis, chain.genesis.create_engine())
    try:
        producer_pool = intake_for(other)
        for account in PROSUMERS:
            producer_pool.submit(signed(account))
        encoded = seal(other, producer_pool.mempool).encode()
    finally:
        other.store.close()
    block = decode_block(encoded, chain.transaction_from_raw)
    assert len(block.transactions) == 3 and len(chain._transactions) == 0


def test_the_cache_is_bounded_by_bytes_not_entries():
    cache = ByteLRU(10_000, len)
    for n in range(100):
        cache.put(n, b"x" * (n * 37 % 3_000))
        assert cache.bytes == sum(len(cache.get(k)) for k in list(cache._entries)) <= 10_000
    assert 99 in cache and 0 not in cache
    cache.put("huge", b"x" * 10_001)
    assert "huge" not in cache and cache.bytes <= 10_000


def test_what_the_intake_keeps_per_transaction_never_outgrows_the_pool(chain):
    intake = intake_for(chain, MempoolLimits(global_slots=2, global_queue=0))
    for tip, account in zip((1, 2, 3), PROSUMERS):
        intake.submit(signed(account, tip=tip * 10**9))  # each evicts the cheapest before it
    intake.submit(signed(PROSUMERS[2], nonce=1, tip=4 * 10**9), from_network=True)
    assert len(intake.mempool) == 2
    assert set(intake._last_announced) <= set(intake.mempool._by_hash)
    assert intake._local <= set(intake.mempool._by_hash) and len(intake._local) == 1


def revoke(account) -> bytes:
    data = keccak256(b"revoke(address)")[:4] + eth_abi.encode(["address"], [account.address])
    return signed(ADMIN, data=data, gas=200_000, to=REGISTRY.address.to_checksum())


def test_a_peer_relaying_senders_never_registered_is_penalised(chain):
    intake = intake_for(chain)
    port = NodeChainPort(chain, intake)
    assert port.add_transaction(signed(PROSUMERS[0])).outcome is Outcome.ACCEPTED
    refused = port.add_transaction(large(STRANGER))
    assert refused.outcome is Outcome.INVALID and "sender not registered" in refused.reason
    assert port.add_transaction(signed(PROSUMERS[0], nonce=10**6)).outcome is Outcome.KNOWN  # a race, not an attack
    assert port.add_transaction(signed(PROSUMERS[1], gas=20_000)).outcome is Outcome.INVALID  # below intrinsic gas


def test_a_sender_revoked_in_the_last_blocks_is_a_race_not_an_attack(chain):
    intake = intake_for(chain)
    port = NodeChainPort(chain, intake)
    intake.submit(revoke(PROSUMERS[1]))
    seal(chain, intake.mempool)
    late = port.add_transaction(signed(PROSUMERS[1]))
    assert late.outcome is Outcome.KNOWN and "sender not registered" in late.reason
    for _ in range(16):
        seal(chain, intake.mempool)
    assert port.add_transaction(signed(PROSUMERS[1])).outcome is Outcome.INVALID  # long enough ago
