"""Proof of work: real grinding, retargeting, the R_f + r·s reward, and blocks
that break the rules refused with a reason and without harm."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from consensus.engine import SealOptions, Signer
from consensus.pow import MAX_DOWN_STEPS, TWO_256, PoWConfig, ProofOfWork, work_hash
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from helpers import DEV_KEYS
from node.chain import Chain
from node.mempool import Mempool
from node.producer import produce_block
from node.store import Store
from vm.blocks import Block, InvalidBlock
from vm.transactions import decode_transaction
from vm.types import Address

MINER = Signer(b"\x41" * 32)
ALICE = Account.from_key(DEV_KEYS[1])
ELC = 10**18


def open_chain(path, difficulty: int = 300) -> Chain:
    document = devnet_genesis_document(MINER.address, "pow")
    document["consensus"].update(difficulty=difficulty, minDifficulty=100)
    document["blockTime"] = 2
    genesis = Genesis.from_json(document)
    return Chain(Store(str(path)), genesis, genesis.create_engine())


def transfer(nonce: int):
    return decode_transaction(bytes(ALICE.sign_transaction({
        "to": "0x" + "55" * 20, "value": 1, "gas": 21_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9}).raw_transaction))


def mine(chain: Chain, txs=(), gap: int = 2) -> Block:
    mempool = Mempool(chain.chain_id, chain.genesis.gas_limit)
    for tx in txs:
        mempool.add(tx, chain.state(), chain.environment(chain.head, 0, MINER.address).base_fee)
    timestamp = max(chain.head.timestamp + gap, int(time.time()) - 60)
    return produce_block(chain, mempool, MINER, timestamp).block


@pytest.fixture
def pair(tmp_path):
    miner, follower = open_chain(tmp_path / "m"), open_chain(tmp_path / "f")
    yield miner, follower
    miner.store.close()
    follower.store.close()


def test_mined_blocks_carry_real_work_and_pay_rf_plus_r_s(pair):
    miner, follower = pair
    before = miner.state().get_balance(MINER.address)
    block = mine(miner, [transfer(0), transfer(1)])
    assert work_hash(block.header.seal_hash, block.header.seal) <= TWO_256 // block.header.difficulty
    fees = sum(r.gas_used * r.effective_gas_price for r in miner.receipts(block.hash))
    assert miner.state().get_balance(MINER.address) - before == 200 * ELC + 3 * ELC * 2 + fees
    follower.import_block(block)
    assert follower.head.hash == block.hash and follower.state_db.root == miner.state_db.root


def signed(account, to: str, nonce: int, value: int = 0):
    return decode_transaction(bytes(account.sign_transaction({
        "to": to, "value": value, "gas": 21_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9}).raw_transaction))


def test_self_transfers_earn_no_per_transaction_reward(pair):
    """r·s pays for work done for others: zero-value self-transfers (a nonce bump and a
    fee paid back to the miner) are not farmable, and the rule holds on import too."""
    miner, follower = pair
    before = miner.state().get_balance(MINER.address)
    farmed = [signed(ALICE, ALICE.address, nonce) for nonce in range(5)]
    block = mine(miner, [*farmed, transfer(5)])
    fees = sum(r.gas_used * r.effective_gas_price for r in miner.receipts(block.hash))
    assert len(block.transactions) == 6
    assert miner.state().get_balance(MINER.address) - before == 200 * ELC + 3 * ELC * 1 + fees
    follower.import_block(block)
    assert follower.state_db.root == miner.state_db.root


def test_rewarded_transactions_skip_the_producers_own_and_cap_s():
    from consensus.pow import rewarded_transactions
    from vm.blocks import Receipt
    ok = Receipt(2, True, 21_000, 21_000, 10**9, (), b"\0" * 256)
    failed = replace(ok, succeeded=False)
    miner_account = Account.from_key(DEV_KEYS[2])
    txs = (transfer(0), transfer(1), signed(miner_account, ALICE.address, 0), transfer(2))
    config = PoWConfig(block_time=2, difficulty=1, min_difficulty=1, fixed_reward=0, reward_per_tx=1)
    producer = Address(bytes.fromhex(miner_account.address[2:]))
    assert rewarded_transactions(producer, txs, (ok, ok, ok, failed), config) == 2
    assert rewarded_transactions(producer, txs, (ok, ok, ok, ok), replace(config, reward_max_txs=2)) == 2
    assert rewarded_transactions(producer, txs, (ok, ok, ok, ok), replace(config, reward_min_fee=10**18)) == 0


def test_difficulty_retargets_toward_the_block_time_in_bounded_steps():
    engine = ProofOfWork(PoWConfig(block_time=10, difficulty=1600, min_difficulty=100, fixed_reward=0,
                                   reward_per_tx=0))
    parent = replace(_header(number=5, timestamp=1000), difficulty=1600)
    assert engine.difficulty(parent, 1005) == 1700  # faster than target: harder by 1/16
    assert engine.difficulty(parent, 1012) == 1600  # on target
    assert engine.difficulty(parent, 1025) == 1500  # late: easier
    assert engine.difficulty(parent, 5000) == 1600 - 100 * MAX_DOWN_STEPS  # bounded however late
    assert engine.difficulty(replace(parent, difficulty=100), 5000) == 100  # floored


def _header(number: int, timestamp: int):
    from vm.blocks import Header
    from vm.types import ZERO_HASH

    return Header(ZERO_HASH, number, timestamp, MINER.address, ZERO_HASH, ZERO_HASH, ZERO_HASH, b"\x00" * 256,
                  30_000_000, 0, 10**9, 1)


def _remined(block: Block, **changes) -> Block:
    header = replace(block.header, **changes)
    return Block(ProofOfWork(PoWConfig(2, 1, 1, 0, 0)).seal(header, MINER), block.transactions)


@pytest.mark.parametrize("forge,reason", [
    (lambda b: Block(b.header.with_seal(_insufficient_nonce(b.header)), b.transactions), "insufficient work"),
    (lambda b: _remined(b, difficulty=b.header.difficulty - 1), "wrong difficulty"),
    (lambda b: _remined(b, timestamp=int(time.time()) + 3600), "ahead of this node.s clock|wrong difficulty"),
    (lambda b: _remined(b, timestamp=b.header.timestamp - 2), "not after the parent"),
])
def test_rule_breaking_blocks_are_refused(pair, forge, reason):
    miner, follower = pair
    follower.import_block(mine(miner))
    good = mine(miner)  # its parent is two seconds older
    head = follower.head
    with pytest.raises(InvalidBlock, match=reason):
        follower.import_block(forge(good))
    assert follower.head == head
    follower.import_block(good)


def test_reward_above_rf_plus_r_s_is_refused(pair):
    miner, follower = pair
    honest = ProofOfWork.finalize
    greedy = lambda self, chain, header, state, txs, receipts: (  # noqa: E731 - the miner who pays itself double
        honest(self, chain, header, state, txs, receipts), honest(self, chain, header, state, txs, receipts))
    ProofOfWork.finalize = greedy
    try:
        inflated = mine(miner, [transfer(0)])
    finally:
        ProofOfWork.finalize = honest
    with pytest.raises(InvalidBlock, match="state root mismatch"):
        follower.import_block(inflated)
    assert follower.head.number == 0


def _insufficient_nonce(header) -> bytes:
    target = TWO_256 // header.difficulty
    nonce = 0
    while work_hash(header.seal_hash, nonce.to_bytes(8, "big")) <= target:
        nonce += 1
    return nonce.to_bytes(8, "big")


def test_sealing_stops_promptly_when_told():
    engine = ProofOfWork(PoWConfig(2, 10**30, 1, 0, 0))  # a target no one will meet
    stop = threading.Event()
    result = []
    worker = threading.Thread(target=lambda: result.append(
        engine.seal(replace(_header(1, 1), difficulty=10**30), MINER, stop, SealOptions(hashrate=1000))))
    worker.start()
    time.sleep(0.1)
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive() and result == [None]


def test_heavier_work_wins_the_fork(tmp_path):
    light, heavy, judge = open_chain(tmp_path / "l"), open_chain(tmp_path / "h"), open_chain(tmp_path / "j")
    light_blocks = [mine(light, gap=20) for _ in range(3)]   # slow blocks: difficulty falls
    heavy_blocks = [mine(heavy, gap=1) for _ in range(2)]    # fast blocks: difficulty rises
    for block in light_blocks + heavy_blocks:
        judge.import_block(block)
    total = lambda chain, blocks: sum(b.header.difficulty for b in blocks)  # noqa: E731
    expected = heavy if total(heavy, heavy_blocks) > total(light, light_blocks) else light
    assert judge.head.hash == expected.head.hash
    assert {Address(a) for a in judge.orphans.values()} == {MINER.address}
    for chain in (light, heavy, judge):
        chain.store.close()


def test_sim_pow_mining_reports_the_papers_model():
    import json
    import math
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "cli.main", "sim", "pow-mining", "--json", "--servers", "3",
                             "--block-sizes", "100,200"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["model"]
    assert [row["servers"] for row in rows] == [1, 2, 3]
    for row in rows:
        for size in (100, 200):
            rho = row[f"s={size}"]["probability"]
            assert rho == pytest.approx(math.exp(-0.01 * size) / row["servers"])
            assert row[f"s={size}"]["utility"] == pytest.approx((200 + 3 * size) * rho)
