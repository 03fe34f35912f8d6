"""Mempool rules: nonce order, replacement by fee bump, eviction when full, a reason for every refusal."""
from __future__ import annotations

import pytest
from eth_account import Account
from node.mempool import Mempool, MempoolLimits
from vm.state import Account as StateAccount
from vm.state import State
from vm.native.registry import REGISTRY, Role
from vm.transactions import decode_transaction
from vm.transition import TransactionRejected
from vm.types import Address

KEYS = [Account.create() for _ in range(3)]
BASE_FEE = 10**9


@pytest.fixture
def state() -> State:
    state = State(_Empty())
    for account in KEYS:
        address = Address.from_hex(account.address)
        state.set_account(address, StateAccount(0, 10**21))
        REGISTRY.write_genesis(state, [], [(address, Role.PROSUMER, "")])
    return state


class _Empty:
    def get(self, key):
        return None


def tx(account, nonce, tip=10**9, fee_cap=5 * 10**9, value=1):
    return decode_transaction(bytes(account.sign_transaction({
        "to": "0x" + "11" * 20, "value": value, "gas": 21_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": fee_cap, "maxPriorityFeePerGas": tip}).raw_transaction))


def pool(max_transactions=100, max_per_sender=16) -> Mempool:
    return Mempool(1337, 30_000_000, MempoolLimits(max_transactions, max_per_sender))


def test_best_tip_first_nonce_order_within_sender_and_stop_at_gap(state):
    mempool = pool()
    a, b, c = KEYS
    for t in (tx(a, 1, tip=9 * 10**8), tx(a, 0, tip=10**9), tx(b, 0, tip=3 * 10**9), tx(c, 1, tip=4 * 10**9)):
        mempool.add(t, state, BASE_FEE)
    order = [(t.sender.to_checksum(), t.nonce) for t in mempool.executable(state, BASE_FEE)]
    assert order == [(b.address, 0), (a.address, 0), (a.address, 1)]  # c waits behind its nonce gap
    assert mempool.pending_nonce(Address.from_hex(a.address), 0) == 2
    assert mempool.counts(state) == (3, 1)


def test_replacement_needs_a_ten_percent_bump(state):
    mempool = pool()
    original = tx(KEYS[0], 0, tip=10**9, fee_cap=5 * 10**9)
    mempool.add(original, state, BASE_FEE)
    with pytest.raises(TransactionRejected, match="replacement transaction underpriced"):
        mempool.add(tx(KEYS[0], 0, tip=10**9 + 1, fee_cap=5 * 10**9 + 1, value=2), state, BASE_FEE)
    better = tx(KEYS[0], 0, tip=11 * 10**8, fee_cap=55 * 10**8, value=3)
    assert mempool.add(better, state, BASE_FEE)
    assert original.hash not in mempool and better.hash in mempool and len(mempool) == 1


def test_known_transaction_is_accepted_once(state):
    mempool = pool()
    t = tx(KEYS[0], 0)
    assert mempool.add(t, state, BASE_FEE) is True
    assert mempool.add(t, state, BASE_FEE) is False
    assert len(mempool) == 1


def test_full_pool_evicts_the_cheapest_tail_or_refuses(state):
    mempool = pool(max_transactions=2)
    cheap, dear = tx(KEYS[0], 0, tip=10**9), tx(KEYS[1], 0, tip=2 * 10**9)
    mempool.add(cheap, state, BASE_FEE)
    mempool.add(dear, state, BASE_FEE)
    with pytest.raises(TransactionRejected, match="txpool is full"):
        mempool.add(tx(KEYS[2], 0, tip=5 * 10**8), state, BASE_FEE)
    richer = tx(KEYS[2], 0, tip=3 * 10**9)
    mempool.add(richer, state, BASE_FEE)
    assert cheap.hash not in mempool and {dear.hash, richer.hash} <= set(mempool._by_hash)


def test_limits_and_funds(state):
    mempool = pool(max_per_sender=4)
    with pytest.raises(TransactionRejected, match="nonce too high"):
        mempool.add(tx(KEYS[0], 4), state, BASE_FEE)
    with pytest.raises(TransactionRejected, match="less than block base fee"):
        mempool.add(tx(KEYS[0], 0, tip=1, fee_cap=10), state, BASE_FEE)
    mempool.add(tx(KEYS[0], 0, value=10**21 - 10**18), state, BASE_FEE)
    with pytest.raises(TransactionRejected, match="insufficient funds"):
        mempool.add(tx(KEYS[0], 1, value=10**18), state, BASE_FEE)


def test_prune_drops_used_nonces(state):
    mempool = pool()
    first, second = tx(KEYS[0], 0), tx(KEYS[0], 1)
    mempool.add(first, state, BASE_FEE)
    mempool.add(second, state, BASE_FEE)
    address = Address.from_hex(KEYS[0].address)
    state.set_account(address, StateAccount(1, 10**21))
    mempool.prune(state)
    assert first.hash not in mempool and second.hash in mempool
