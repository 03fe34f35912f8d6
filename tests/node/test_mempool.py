"""Mempool rules: nonce order, replacement by fee bump, eviction when full, a reason for every refusal."""
from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from node.mempool import OVER_SLOTS, QUEUED, WITHIN_SLOTS, Mempool, MempoolLimits, slot_count
from vm.state import Account as StateAccount
from vm.state import State
from vm.native.registry import REGISTRY, Role
from vm.transactions import Transaction, decode_transaction
from vm.transition import TransactionRejected, upfront_cost
from vm.types import Address

KEYS = [Account.create() for _ in range(3)]
BASE_FEE = 10**9


@pytest.fixture
def state() -> State:
    state = State(_Empty())
    for account in KEYS:
        address = Address.from_hex(account.address)
        state.set_account(address, StateAccount(0, 10**21))
        REGISTRY.write_members(state, [], [(address, Role.PROSUMER, "")])
    return state


class _Empty:
    def get(self, key):
        return None


def tx(account, nonce, tip=10**9, fee_cap=5 * 10**9, value=1):
    return decode_transaction(bytes(account.sign_transaction({
        "to": "0x" + "11" * 20, "value": value, "gas": 21_000, "chainId": 1337, "nonce": nonce,
        "maxFeePerGas": fee_cap, "maxPriorityFeePerGas": tip}).raw_transaction))


def pool(slots=100, queue=0, max_per_sender=16, **limits) -> Mempool:
    return Mempool(1337, 30_000_000, MempoolLimits(global_slots=slots, global_queue=queue,
                                                   max_per_sender=max_per_sender, **limits))


def test_best_tip_first_nonce_order_within_sender_and_stop_at_gap(state):
    mempool = pool(queue=10)
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
    mempool = pool(slots=2)
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


def test_the_pool_keeps_nothing_of_what_left_it(state):
    """A pool that never fills still lets go of mined transactions: nothing it keeps for
    eviction holds them alive (a stale eviction entry once kept every 128 KiB one)."""
    import gc
    import weakref
    mempool, sender = pool(slots=64), Address.from_hex(KEYS[0].address)
    departed = []
    for nonce in range(300):
        pooled = tx(KEYS[0], nonce)
        mempool.add(pooled, state, BASE_FEE)
        departed.append(weakref.ref(pooled))
        del pooled
        state.set_account(sender, StateAccount(nonce + 1, 10**21))  # mined in the next block
        mempool.prune(state)
    gc.collect()
    assert len(mempool) == 0
    assert sum(ref() is not None for ref in departed) <= 64 + 2, "mined transactions are still referenced"


def registered(state, count: int) -> list:
    """`count` fresh funded prosumer accounts."""
    accounts = [Account.create() for _ in range(count)]
    for account in accounts:
        address = Address.from_hex(account.address)
        state.set_account(address, StateAccount(0, 10**21))
        REGISTRY.write_members(state, [], [(address, Role.PROSUMER, "")])
    return accounts


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_queued_transactions_never_evict_pending_ones(state):
    mempool = pool(slots=2, queue=1)
    a, b, c = KEYS
    pending = [tx(a, 0), tx(a, 1), tx(b, 0)]
    for t in pending:
        mempool.add(t, state, BASE_FEE)
    with pytest.raises(TransactionRejected, match="txpool is full"):
        mempool.add(tx(c, 3, tip=4 * 10**9), state, BASE_FEE)  # pays four times as much, but cannot run yet
    assert all(t.hash in mempool for t in pending)
    richer = tx(c, 0, tip=2 * 10**9)
    assert mempool.add(richer, state, BASE_FEE)  # an executable one that pays more takes the cheapest tail
    assert richer.hash in mempool and pending[1].hash not in mempool and len(mempool) == 3


def test_queued_transactions_expire_after_the_lifetime(state):
    clock = FakeClock()
    mempool = Mempool(1337, 30_000_000, MempoolLimits(lifetime=3600), clock=clock)
    gapped, executable = tx(KEYS[0], 2), tx(KEYS[1], 0)
    mempool.add(gapped, state, BASE_FEE)
    mempool.add(executable, state, BASE_FEE)
    clock.now = 3599.0
    mempool.prune(state)
    assert gapped.hash in mempool
    clock.now = 3600.0
    mempool.prune(state)
    assert gapped.hash not in mempool and executable.hash in mempool  # executable ones do not expire
    assert mempool.counts(state) == (1, 0)


def test_expired_queued_transactions_make_room_before_anything_is_evicted(state):
    clock = FakeClock()
    mempool = Mempool(1337, 30_000_000, MempoolLimits(global_slots=1, global_queue=1, lifetime=60), clock=clock)
    old, kept = tx(KEYS[0], 5, tip=3 * 10**9), tx(KEYS[1], 0, tip=3 * 10**9)
    mempool.add(old, state, BASE_FEE)
    mempool.add(kept, state, BASE_FEE)
    clock.now = 61.0
    newcomer = tx(KEYS[2], 4, tip=10**9)  # pays less than the expired one, which goes anyway
    assert mempool.add(newcomer, state, BASE_FEE)
    assert old.hash not in mempool and {kept.hash, newcomer.hash} <= set(mempool._by_hash)


def test_per_account_queue_is_capped(state):
    mempool = pool(queue=100, account_queue=2)
    a, b = KEYS[0], KEYS[1]
    mempool.add(tx(a, 2), state, BASE_FEE)
    mempool.add(tx(a, 3), state, BASE_FEE)
    with pytest.raises(TransactionRejected, match="account queue full: 2 transactions"):
        mempool.add(tx(a, 4), state, BASE_FEE)
    assert mempool.add(tx(a, 3, tip=2 * 10**9, fee_cap=6 * 10**9), state, BASE_FEE)  # a replacement is no more
    assert mempool.add(tx(a, 0), state, BASE_FEE)  # executable ones do not count against the queue
    assert mempool.add(tx(b, 2), state, BASE_FEE)  # nor do other senders' queued ones
    assert mempool.counts(state) == (1, 3)


def test_a_flood_from_many_accounts_cannot_push_out_senders_paying_as_much(state):
    mempool = pool(slots=6, account_slots=2)
    honest = [tx(account, nonce) for account in KEYS for nonce in (0, 1)]
    for t in honest:
        mempool.add(t, state, BASE_FEE)
    flooders = registered(state, 20)
    for account in flooders:  # the same tip: paying the same now, whatever they promise later
        with pytest.raises(TransactionRejected, match="txpool is full"):
            mempool.add(tx(account, 0, fee_cap=50 * 10**9), state, BASE_FEE)
    assert all(t.hash in mempool for t in honest)
    outbid = tx(flooders[0], 0, tip=10**9 + 1)
    assert mempool.add(outbid, state, BASE_FEE)  # paying more takes exactly one honest tail
    assert len(mempool) == 6 and sum(t.hash in mempool for t in honest) == 5
    assert all(t.hash in mempool for t in honest if t.nonce == 0)


def test_executable_transactions_beyond_account_slots_are_evicted_first(state):
    mempool = pool(slots=6, account_slots=2)
    whale, small = KEYS[0], KEYS[1]
    whales = [tx(whale, nonce, tip=3 * 10**9) for nonce in range(5)]
    for t in whales + [tx(small, 0)]:
        mempool.add(t, state, BASE_FEE)
    newcomer = tx(KEYS[2], 0, tip=10**9)  # within its own slots: it outranks the whale's surplus
    assert mempool.add(newcomer, state, BASE_FEE)
    assert whales[4].hash not in mempool and all(t.hash in mempool for t in whales[:4])
    with pytest.raises(TransactionRejected, match="txpool is full"):
        mempool.add(tx(whale, 5, tip=4 * 10**9), state, BASE_FEE)  # the whale's own surplus outranks nobody's slots


PROPERTY_KEYS = KEYS + [Account.create()]
TIPS = (10**9, 2 * 10**9, 3 * 10**9)


def big_tx(account, nonce):
    """A transaction of two slots."""
    return decode_transaction(bytes(account.sign_transaction({
        "to": "0x" + "11" * 20, "value": 1, "gas": 200_000, "chainId": 1337, "nonce": nonce, "data": b"\0" * 40_000,
        "maxFeePerGas": 12 * 10**9, "maxPriorityFeePerGas": 25 * 10**8}).raw_transaction))


SIGNED = {(sender, nonce, variant): tx(account, nonce, tip=TIPS[variant], fee_cap=5 * TIPS[variant])
          if variant < len(TIPS) else big_tx(account, nonce)
          for sender, account in enumerate(PROPERTY_KEYS) for nonce in range(8) for variant in range(len(TIPS) + 1)}
PROPERTY_LIMITS = MempoolLimits(global_slots=5, global_queue=2, account_slots=2, account_queue=1, lifetime=100,
                                max_per_sender=6)

senders = st.integers(0, len(PROPERTY_KEYS) - 1)
adds = st.tuples(st.just("add"), senders, st.integers(0, 3), st.integers(0, len(TIPS)))
operations = st.one_of(
    adds, adds, adds,
    st.tuples(st.just("drop"), st.integers(0, 20)),
    st.tuples(st.just("mine"), senders, st.integers(-1, 2), st.booleans()),
    st.tuples(st.just("tick"), st.integers(0, 60)))


@settings(max_examples=200, deadline=None)
@given(st.lists(operations, min_size=20, max_size=80))
def test_any_sequence_of_operations_keeps_the_pool_consistent(steps):
    """Adds (the nonce relative to the account's), drops, new heads (that may take a nonce
    back, as a reorg does; pruned at once or only at the next add) and time passing."""
    state = State(_Empty())
    for account in PROPERTY_KEYS:
        address = Address.from_hex(account.address)
        state.set_account(address, StateAccount(0, 10**21))
        REGISTRY.write_members(state, [], [(address, Role.PROSUMER, "")])
    clock = FakeClock()
    mempool = Mempool(1337, 30_000_000, PROPERTY_LIMITS, clock=clock)
    model: set[bytes] = set()
    """What was admitted and not reported as removed."""
    removed: list[Transaction] = []
    mempool.on_removal(lambda t: (model.remove(t.hash), removed.append(t)))
    for step in steps:
        if step[0] == "add":
            address = Address.from_hex(PROPERTY_KEYS[step[1]].address)
            candidate = SIGNED.get((step[1], state.get_account(address).nonce + step[2], step[3]))
            if candidate is None:
                continue
            before, newcomer = ranks(mempool), rank_on_arrival(mempool, candidate, state)
            expired = {h for h, when in mempool._arrived.items()
                       if when <= clock.now - PROPERTY_LIMITS.lifetime and before[h][0] == QUEUED}
            removed.clear()
            try:
                admitted = mempool.add(candidate, state, BASE_FEE)
            except TransactionRejected:
                admitted = False
            if admitted:
                model.add(candidate.hash)
            evicted = [t for t in removed if t.sender != candidate.sender and t.hash not in expired]
            assert all(before[t.hash] < newcomer for t in evicted) and (admitted or not evicted)
        elif step[0] == "drop" and len(mempool):
            mempool.drop(sorted(mempool._by_hash.values(), key=lambda t: t.hash)[step[1] % len(mempool)])
        elif step[0] == "mine":
            address = Address.from_hex(PROPERTY_KEYS[step[1]].address)
            nonce = min(max(state.get_account(address).nonce + step[2], 0), 6)  # -1: a reorg took one back
            state.set_account(address, StateAccount(nonce, 10**21))
            if step[3]:
                mempool.prune(state)
                assert all(entry.nonce == state.get_account(a).nonce for a, entry in mempool._by_sender.items())
        elif step[0] == "tick":
            clock.now += step[1]
        assert_consistent(mempool)
        assert set(mempool._by_hash) == model


def ranks(mempool: Mempool) -> dict[bytes, tuple[int, int]]:
    """Each pooled transaction's (rank, effective tip), as eviction compares them."""
    ranked = {}
    for entry in mempool._by_sender.values():
        for nonce, t in entry.txs.items():
            rank = QUEUED if not entry.is_pending(nonce) else \
                OVER_SLOTS if nonce - entry.nonce >= mempool.limits.account_slots else WITHIN_SLOTS
            ranked[t.hash] = (rank, t.effective_tip(BASE_FEE))
    return ranked


def rank_on_arrival(mempool: Mempool, t: Transaction, state: State) -> tuple[int, int]:
    nonce = state.get_account(t.sender).nonce
    entry = mempool._by_sender.get(t.sender)
    run = 0
    while entry is not None and nonce + run in entry.txs:
        run += 1
    rank = QUEUED if t.nonce > nonce + run else \
        OVER_SLOTS if t.nonce - nonce >= mempool.limits.account_slots else WITHIN_SLOTS
    return rank, t.effective_tip(BASE_FEE)


def assert_consistent(mempool: Mempool) -> None:
    limits = mempool.limits
    entries = mempool._by_sender
    assert mempool._by_hash == {t.hash: t for entry in entries.values() for t in entry.txs.values()}
    pending_slots = 0
    for address, entry in entries.items():
        assert entry.txs and all(t.sender == address and t.nonce == n for n, t in entry.txs.items())
        assert entry.spend == sum(upfront_cost(t) for t in entry.txs.values())
        assert min(entry.txs) >= entry.nonce
        run = 0
        while entry.nonce + run in entry.txs:
            run += 1
        assert entry.run == run and entry.queued <= limits.account_queue
        assert entry.run_slots == sum(slot_count(entry.txs[entry.nonce + n]) for n in range(run))
        assert entry.slots == sum(slot_count(t) for t in entry.txs.values())
        pending_slots += entry.run_slots
    assert mempool._slots == sum(slot_count(t) for t in mempool._by_hash.values()) <= limits.total_slots
    assert mempool._pending_slots == pending_slots
    assert mempool.queued_slots <= limits.global_queue
    assert list(mempool._arrived) == [h for h in mempool._arrived if h in mempool] and \
        set(mempool._arrived) == set(mempool._by_hash)
    assert sum(entry.run for entry in entries.values()) + sum(entry.queued for entry in entries.values()) \
        == len(mempool)
