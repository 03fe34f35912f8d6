"""The double auction on the in-process Sandbox: orders escrow their tokens, owners cancel
before the clearing, and the end-of-block hook at each interval's last block clears the book
(pay-as-clear and pay-as-bid), with partial fills, refunds, one Fill per matched pair and a
Cleared event; checked against an independent brute-force clearing of random small books;
a full book of 10,000 orders within the hook's gas budget; and one round over JSON-RPC on a
node (web3 contract objects, events, revert reasons as a wallet sees them)."""
from __future__ import annotations

import eth_abi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from market_sandbox import ACCOUNTS, Sandbox, devnet_document
from market.contracts.double_auction import MAX_QUANTITY, DoubleAuction, cost_of
from vm.crypto import keccak256

DA = DoubleAuction.default_address
INTERVAL = 10
ORDER_TYPES = ("address", "bool", "uint256", "uint256", "uint256", "uint256", "uint8", "uint256")
OPEN, CANCELLED, SETTLED = 1, 2, 3
FILL_TOPIC = keccak256(b"Fill(uint256,uint256,uint256,uint256,uint256)")
CLEARED_TOPIC = keccak256(b"Cleared(uint256,uint256,uint256)")
PLACED_TOPIC = keccak256(b"OrderPlaced(uint256,address,bool,uint256,uint256,uint256)")
SELLERS = (1, 2, 3, 4, 5)
BUYERS = (6, 7, 8, 9, 10)
ENERGY = 1_000_000


def make_box(pricing: str = "clear") -> Sandbox:
    box = Sandbox(devnet_document(DoubleAuction={"intervalBlocks": INTERVAL, "pricing": pricing}))
    slot = box.call(0, "Meters", "currentSlot()", returns=("uint64",))[0]
    for index in SELLERS:
        who = ACCOUNTS[index].address.to_checksum()
        ok(box, 19 + index, "Meters", "postReading(address,uint64,uint256,uint256,uint256)", (who, slot, ENERGY, 0, 0))
        ok(box, 19 + index, "EnergyToken", "mintWatts(address,uint256)", (who, ENERGY))
        ok(box, index, "EnergyToken", "approve(address,uint256)", (DA.to_checksum(), 2**255))
    for index in BUYERS:
        ok(box, index, "FiatToken", "approve(address,uint256)", (DA.to_checksum(), 2**255))
    return box


def ok(box, sender, to, signature, args=()):
    result = box.transact(sender, to, signature, args)
    assert result.ok, result.reason
    return result


def bid(box, who, wh, price) -> int:
    return ok(box, who, DA, "placeBid(uint256,uint256)", (wh, price)).decode("uint256")[0]


def ask(box, who, wh, price) -> int:
    return ok(box, who, DA, "placeAsk(uint256,uint256)", (wh, price)).decode("uint256")[0]


def balances(box, who) -> tuple[int, int]:
    address = (ACCOUNTS[who].address if isinstance(who, int) else who).to_checksum()
    fiat = box.call(0, "FiatToken", "balanceOf(address)", (address,), ("uint256",))[0]
    energy = box.call(0, "EnergyToken", "balanceOf(address)", (address,), ("uint256",))[0]
    return fiat, energy


def order(box, order_id):
    return box.call(0, DA, "order(uint256)", (order_id,), ORDER_TYPES)


def clear(box) -> tuple:
    """Mine blocks until the end of the current interval's last block; its end-of-block logs."""
    while True:
        number = box.number + 1
        logs = box.mine()
        if number % INTERVAL == INTERVAL - 1:
            return logs


def decode(logs) -> tuple[list[tuple], list[tuple]]:
    """(fills as (interval, bidId, askId, wh, price), cleared as (interval, price, volume))."""
    fills, cleared = [], []
    for log in logs:
        if log.address != DA:
            continue
        interval = int.from_bytes(log.topics[1], "big")
        if log.topics[0] == FILL_TOPIC:
            fills.append((interval, *eth_abi.decode(["uint256"] * 4, log.data)))
        elif log.topics[0] == CLEARED_TOPIC:
            cleared.append((interval, *eth_abi.decode(["uint256"] * 2, log.data)))
    return fills, cleared


@pytest.fixture(scope="module")
def template():
    return make_box()


@pytest.fixture
def box(template):
    copy = Sandbox.__new__(Sandbox)
    copy.__dict__.update(template.__dict__)
    copy.committed = type(template.committed)(template.committed)
    return copy


def test_placing_orders_escrows_fiat_and_energy(box):
    fiat0, energy0 = balances(box, 6)
    result = box.transact(6, DA, "placeBid(uint256,uint256)", (1_500, 25))
    assert result.ok and result.decode("uint256") == (0,)
    placed = [log for log in result.logs if log.address == DA]
    assert len(placed) == 1 and placed[0].topics[0] == PLACED_TOPIC
    assert int.from_bytes(placed[0].topics[1], "big") == 0
    interval = (box.number) // INTERVAL
    assert eth_abi.decode(["bool", "uint256", "uint256", "uint256"], placed[0].data) == (True, 1_500, 25, interval)
    assert balances(box, 6) == (fiat0 - 38, energy0)  # ceil(1500 * 25 / 1000) = ceil(37.5)
    assert ask(box, 1, 700, 20) == 1
    assert balances(box, DA) == (38, 700)
    owner, is_bid, wh, price, escrow, at, status, filled = order(box, 0)
    assert (owner.lower(), is_bid, wh, price, escrow, at, status, filled) == (
        ACCOUNTS[6].address.to_checksum().lower(), True, 1_500, 25, 38, interval, OPEN, 0)
    assert order(box, 1)[1:] == (False, 700, 20, 700, interval, OPEN, 0)
    assert box.call(0, DA, "orderCount()", returns=("uint256",)) == (2,)
    assert box.call(0, DA, "openOrders()", returns=("uint256",)) == (2,)
    assert box.call(0, DA, "intervalBlocks()", returns=("uint256",)) == (INTERVAL,)
    assert box.call(0, DA, "interval()", returns=("uint256",)) == ((box.number + 1) // INTERVAL,)


def test_order_revert_reasons(box):
    def reason(sender, signature, args):
        result = box.transact(sender, DA, signature, args)
        assert not result.ok
        return result.reason

    assert reason(6, "placeBid(uint256,uint256)", (0, 25)) == "double: zero amount"
    assert reason(1, "placeAsk(uint256,uint256)", (10, 0)) == "double: zero price"
    assert reason(6, "placeBid(uint256,uint256)", (MAX_QUANTITY, 1)) == "double: amount or price too large"
    assert reason(20, "placeBid(uint256,uint256)", (10, 25)) == "double: caller may not buy energy"  # a meter oracle
    assert reason(20, "placeAsk(uint256,uint256)", (10, 25)) == "double: caller may not sell energy"
    assert reason(11, "placeBid(uint256,uint256)", (10, 25)) == "fiat: insufficient allowance"
    assert reason(11, "placeAsk(uint256,uint256)", (10, 25)) == "energy: insufficient allowance"
    assert reason(1, "placeAsk(uint256,uint256)", (ENERGY + 1, 25)) == "energy: transfer amount exceeds balance"
    assert reason(6, "cancelOrder(uint256)", (0,)) == "double: no such order"
    first = bid(box, 6, 100, 25)
    assert reason(7, "cancelOrder(uint256)", (first,)) == "double: caller is not the order's owner"
    ok(box, 6, DA, "cancelOrder(uint256)", (first,))
    assert reason(6, "cancelOrder(uint256)", (first,)) == "double: order already cancelled"
    second = bid(box, 6, 100, 25)
    clear(box)
    assert reason(6, "cancelOrder(uint256)", (second,)) == "double: order already cleared"
    assert box.call(0, DA, "orderCount()", returns=("uint256",)) == (2,)


def test_cancel_refunds_the_whole_escrow_and_leaves_the_order_out_of_the_clearing(box):
    fiat0, _ = balances(box, 7)
    _, energy0 = balances(box, 2)
    b = bid(box, 7, 1_000, 40)
    a = ask(box, 2, 1_000, 10)
    cancel = ok(box, 7, DA, "cancelOrder(uint256)", (b,))
    assert [log.address for log in cancel.logs].count(DA) == 1
    assert balances(box, 7)[0] == fiat0 and order(box, b)[6] == CANCELLED
    assert box.call(0, DA, "openOrders()", returns=("uint256",)) == (1,)
    fills, cleared = decode(clear(box))
    assert fills == [] and [c[1:] for c in cleared] == [(0, 0)]
    assert balances(box, 2)[1] == energy0 and order(box, a)[6:] == (SETTLED, 0)
    assert balances(box, DA) == (0, 0)


BOOK = [("bid", 6, 1_000, 30), ("bid", 7, 500, 25), ("ask", 1, 800, 20), ("ask", 2, 1_000, 26)]


def place_book(box, book):
    return [bid(box, who, wh, price) if side == "bid" else ask(box, who, wh, price) for side, who, wh, price in book]


def test_pay_as_clear_uniform_price_partial_fills_and_refunds(box):
    before = {who: balances(box, who) for who in (6, 7, 1, 2)}
    b1, b2, a1, a2 = place_book(box, BOOK)
    interval = (box.number + 1) // INTERVAL
    fills, cleared = decode(clear(box))
    # 30 vs 20 trade 800 Wh (the ask fully), 30 vs 26 the bid's last 200; 25 < 26 stops.
    # Uniform price: the last matched pair's midpoint, (30 + 26) // 2 = 28.
    assert fills == [(interval, b1, a1, 800, 28), (interval, b1, a2, 200, 28)]
    assert cleared == [(interval, 28, 1_000)]
    # b1 escrowed 30 and pays ceil(1000 * 28 / 1000) = 28: 23 (= ceil(22.4)) to a1, 5 to a2.
    assert balances(box, 6) == (before[6][0] - 28, before[6][1] + 1_000)
    assert balances(box, 7) == before[7]                       # no fill: whole escrow back
    assert balances(box, 1) == (before[1][0] + 23, before[1][1] - 800)
    assert balances(box, 2) == (before[2][0] + 5, before[2][1] - 200)  # 800 unsold Wh back
    assert balances(box, DA) == (0, 0)
    assert [order(box, i)[6:] for i in (b1, b2, a1, a2)] == [(SETTLED, 1_000), (SETTLED, 0), (SETTLED, 800),
                                                              (SETTLED, 200)]
    assert box.call(0, DA, "lastClearing()", returns=("uint256",) * 4 + ("bool",)) == (interval, 28, 1_000, 2, True)
    assert box.call(0, DA, "clearingOf(uint256)", (interval,), ("uint256",) * 4 + ("bool",)) == (28, 1_000, 2, 4, True)
    assert box.call(0, DA, "openOrders()", returns=("uint256",)) == (0,)


def test_pay_as_bid_prices_each_fill_at_its_bid():
    box = make_box("bid")
    assert box.call(0, DA, "pricing()", returns=("string",)) == ("bid",)
    before = {who: balances(box, who) for who in (6, 7, 1, 2)}
    bids_and_asks = [("bid", 6, 1_000, 30), ("bid", 7, 500, 27), ("ask", 1, 800, 20), ("ask", 2, 1_000, 26)]
    b1, b2, a1, a2 = place_book(box, bids_and_asks)
    interval = (box.number + 1) // INTERVAL
    fills, cleared = decode(clear(box))
    assert fills == [(interval, b1, a1, 800, 30), (interval, b1, a2, 200, 30), (interval, b2, a2, 500, 27)]
    assert cleared == [(interval, (1_000 * 30 + 500 * 27) // 1_500, 1_500)]
    assert balances(box, 6) == (before[6][0] - 30, before[6][1] + 1_000)   # 24 + 6
    assert balances(box, 7) == (before[7][0] - 14, before[7][1] + 500)     # ceil(13.5), all of its escrow
    assert balances(box, 1) == (before[1][0] + 24, before[1][1] - 800)
    assert balances(box, 2) == (before[2][0] + 6 + 14, before[2][1] - 700)
    assert balances(box, DA) == (0, 0)


def test_an_empty_interval_logs_nothing_and_the_next_book_is_its_own(box):
    assert decode(clear(box)) == ([], [])
    assert box.call(0, DA, "lastClearing()", returns=("uint256",) * 4 + ("bool",)) == (0, 0, 0, 0, False)
    bid(box, 8, 100, 50)
    ask(box, 3, 100, 50)
    interval = (box.number + 1) // INTERVAL
    fills, cleared = decode(clear(box))
    assert [f[3:] for f in fills] == [(100, 50)] and cleared == [(interval, 50, 100)]
    assert decode(clear(box)) == ([], [])


def test_ties_go_to_the_earlier_order(box):
    late_ask = ask(box, 1, 100, 20)
    early_bid, late_bid = bid(box, 6, 100, 30), bid(box, 7, 100, 30)
    early_ask = ask(box, 2, 100, 20)  # same price as late_ask, but a later id
    fills, _ = decode(clear(box))
    assert [(f[1], f[2], f[3]) for f in fills] == [(early_bid, late_ask, 100), (late_bid, early_ask, 100)]


# -- an independent reference: unit-by-unit matching and a brute-force volume --------------
def reference(book: list[tuple[int, str, int, int, int]], pay_as_bid: bool):
    """book: (id, side, owner, wh, price). Returns (fills [(bid, ask, wh, price)], price, volume,
    payouts {owner: (fiat, energy)} from the contract)."""
    bids = sorted((o for o in book if o[1] == "bid"), key=lambda o: (-o[4], o[0]))
    asks = sorted((o for o in book if o[1] == "ask"), key=lambda o: (o[4], o[0]))
    bid_units = [o for o in bids for _ in range(o[3])]
    ask_units = [o for o in asks for _ in range(o[3])]
    pairs = []
    for b, a in zip(bid_units, ask_units):
        if b[4] < a[4]:
            break
        pairs.append((b, a))
    # Brute force: the greedy volume is the largest tradable at any single price.
    prices = range(0, max((o[4] for o in book), default=0) + 2)
    best = max((min(sum(o[3] for o in bids if o[4] >= p), sum(o[3] for o in asks if o[4] <= p)) for p in prices),
               default=0)
    assert len(pairs) == best
    uniform = (pairs[-1][0][4] + pairs[-1][1][4]) // 2 if pairs else 0
    fills = []
    for b, a in pairs:
        price = b[4] if pay_as_bid else uniform
        if fills and tuple(fills[-1][:2]) == (b[0], a[0]):
            fills[-1][2] += 1
        else:
            fills.append([b[0], a[0], 1, price])
    volume = len(pairs)
    price = (sum(f[2] * f[3] for f in fills) // volume if volume else 0) if pay_as_bid else uniform
    payouts: dict[int, list[int]] = {}
    bought = {o[0]: 0 for o in book}
    for o in book:
        payouts.setdefault(o[2], [0, 0])
    for b, a, wh, p in fills:
        before = bought[b]
        fiat = cost_of(before + wh, p) - cost_of(before, p)
        bought[b] += wh
        bought[a] += wh
        payouts[owner_of(book, a)][0] += fiat
        payouts[owner_of(book, b)][0] -= fiat
        payouts[owner_of(book, b)][1] += wh
        payouts[owner_of(book, a)][1] -= wh
    for o in book:  # every matched bid at or above the price, every matched ask at or below it
        if bought[o[0]] and not pay_as_bid:
            assert (o[4] >= uniform) if o[1] == "bid" else (o[4] <= uniform)
    return [tuple(f) for f in fills], price, volume, {k: tuple(v) for k, v in payouts.items()}


def owner_of(book, order_id):
    return next(o[2] for o in book if o[0] == order_id)


orders = st.lists(st.tuples(st.sampled_from(("bid", "ask")), st.integers(0, 4), st.integers(1, 60),
                            st.integers(1, 40)), min_size=0, max_size=10)


@pytest.mark.parametrize("pricing", ["clear", "bid"])
def test_clearing_matches_a_brute_force_reference(pricing):
    box = make_box(pricing)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(orders)
    def check(drawn):
        book = []
        before = {who: balances(box, who) for who in SELLERS + BUYERS}
        for side, k, wh, price in drawn:
            who = BUYERS[k] if side == "bid" else SELLERS[k]
            order_id = bid(box, who, wh, price) if side == "bid" else ask(box, who, wh, price)
            book.append((order_id, side, who, wh, price))
        interval = (box.number + 1) // INTERVAL
        fills, cleared = decode(clear(box))
        want_fills, want_price, want_volume, payouts = reference(book, pricing == "bid")
        assert [f[1:] for f in fills] == want_fills and all(f[0] == interval for f in fills)
        assert cleared == ([(interval, want_price, want_volume)] if book else [])
        for who in SELLERS + BUYERS:
            fiat, energy = payouts.get(who, (0, 0))
            assert balances(box, who) == (before[who][0] + fiat, before[who][1] + energy)
        assert balances(box, DA) == (0, 0)

    check()


def test_genesis_params():
    assert DoubleAuction().params["intervalBlocks"] == 10 and DoubleAuction().params["pricing"] == "clear"
    with pytest.raises(ValueError, match="pricing must be one of clear, bid"):
        DoubleAuction(params={"pricing": "offer"})
    with pytest.raises(ValueError, match="intervalBlocks must be at least 1"):
        DoubleAuction(params={"intervalBlocks": 0})
    with pytest.raises(ValueError, match="unknown parameters"):
        DoubleAuction(params={"interval": 5})
    with pytest.raises(ValueError, match="DoubleAuction.fiatToken: not an address"):
        DoubleAuction(params={"fiatToken": "0x12"})


def test_the_book_is_capped_so_one_clearing_is_gas_bounded(box):
    from market.contracts.double_auction import MAX_BOOK, OPEN_COUNT

    state = box.state
    OPEN_COUNT.write(state, DA, MAX_BOOK)  # as if MAX_BOOK orders were waiting
    box._commit(state)
    result = box.transact(6, DA, "placeBid(uint256,uint256)", (10, 25))
    assert not result.ok and result.reason == f"double: order book full ({MAX_BOOK} open orders)"


def test_a_full_book_of_distinct_owners_clears_within_the_hook_budget():
    """The worst case for gas: MAX_BOOK orders, all matched, each owner paid separately
    (bench/clearing.py's `crossed` / `distinct` book)."""
    import sys
    from pathlib import Path

    from market.contracts.double_auction import END_OF_BLOCK_GAS, MAX_BOOK

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from clearing import run

    result = run(MAX_BOOK, "crossed", "distinct", seed=3)
    assert result["ok"] and result["escrow_left"] == (0, 0)
    assert result["fills"] >= MAX_BOOK // 2 and result["gas"] < END_OF_BLOCK_GAS
    print(f"\n{MAX_BOOK} orders: {result['seconds']:.2f} s, gas {result['gas']:,} of {END_OF_BLOCK_GAS:,}")


# -- on a node, through web3 as a dApp would ------------------------------------------------------
NODE_INTERVAL = 8


@pytest.fixture(scope="module")
def da_node(tmp_path_factory):
    """A devnet node whose genesis also places the DoubleAuction (8-block intervals)."""
    from genesis.devnet import devnet_genesis_document
    from helpers import node_from_genesis

    def document(signer) -> dict:
        document = devnet_genesis_document(signer)
        document["contracts"]["DoubleAuction"] = {"address": DA.to_checksum(),
                                                  "params": {"intervalBlocks": NODE_INTERVAL}}
        return document

    with node_from_genesis(tmp_path_factory.mktemp("double"), document) as node:
        yield node


def test_orders_and_clearing_over_json_rpc(da_node):
    import time

    from wallet import ACCOUNTS as KEYS
    from wallet import assert_reverts, contracts, mined, submit, transact

    w3 = da_node.web3()
    market = contracts(w3)
    auction, fiat, energy, meters = (market[n] for n in ("DoubleAuction", "FiatToken", "EnergyToken", "Meters"))
    seller, buyer, other = KEYS[1], KEYS[6], KEYS[7]
    slot = meters.functions.currentSlot().call()
    transact(w3, KEYS[20], meters.functions.postReading(seller.address, slot, 5_000, 0, 0))
    transact(w3, KEYS[20], energy.functions.mintWatts(seller.address, 5_000))
    transact(w3, seller, energy.functions.approve(auction.address, 5_000))
    transact(w3, buyer, fiat.functions.approve(auction.address, 1_000))
    transact(w3, other, fiat.functions.approve(auction.address, 1_000))

    assert_reverts(buyer, auction.functions.placeBid(0, 25), "double: zero amount")
    assert_reverts(KEYS[21], auction.functions.placeAsk(10, 25), "double: caller may not sell energy")
    assert_reverts(buyer, auction.functions.cancelOrder(99), "double: no such order")
    fiat_before, energy_before = fiat.functions.balanceOf(buyer.address).call(), energy.functions.balanceOf(
        buyer.address).call()
    while w3.eth.block_number % NODE_INTERVAL != 0:  # an interval just opened: orders and cancel fit in it
        time.sleep(0.1)
    receipts = mined(w3, submit(w3, seller, auction.functions.placeAsk(3_000, 20)),
                     submit(w3, buyer, auction.functions.placeBid(2_000, 30)),
                     submit(w3, other, auction.functions.placeBid(1_000, 40)))
    assert all(r.status == 1 for r in receipts)
    ask_id, bid_id, other_id = (auction.events.OrderPlaced().process_receipt(r)[0].args.id for r in receipts)
    interval = auction.functions.order(bid_id).call()[5]
    assert auction.functions.order(ask_id).call()[5] == auction.functions.order(other_id).call()[5] == interval
    assert_reverts(buyer, auction.functions.cancelOrder(other_id), "double: caller is not the order's owner")
    cancelled = transact(w3, other, auction.functions.cancelOrder(other_id))
    assert auction.events.OrderCancelled().process_receipt(cancelled)[0].args.refund == 40

    deadline = time.monotonic() + 30
    while auction.functions.order(bid_id).call()[6] != SETTLED:
        assert time.monotonic() < deadline, "the interval was not cleared"
        time.sleep(0.3)
    (cleared,) = auction.events.Cleared().get_logs(from_block=receipts[0].blockNumber,
                                                   argument_filters={"interval": interval})
    fills = auction.events.Fill().get_logs(from_block=receipts[0].blockNumber, argument_filters={"interval": interval})
    assert (cleared.args.price, cleared.args.volumeWh) == ((30 + 20) // 2, 2_000)
    assert [(f.args.bidId, f.args.askId, f.args.wh, f.args.price) for f in fills] == [(bid_id, ask_id, 2_000, 25)]
    assert cleared.blockNumber % NODE_INTERVAL == NODE_INTERVAL - 1
    assert cleared.args.interval == interval == cleared.blockNumber // NODE_INTERVAL
    assert fiat.functions.balanceOf(buyer.address).call() == fiat_before - 50   # escrowed 60, 10 back
    assert energy.functions.balanceOf(buyer.address).call() == energy_before + 2_000
    assert energy.functions.balanceOf(seller.address).call() == 3_000  # 5,000 - 3,000 + 1,000 unsold
    assert fiat.functions.balanceOf(auction.address).call() == 0
    assert auction.functions.order(ask_id).call()[6:] == [SETTLED, 2_000]
    assert auction.functions.lastClearing().call() == [cleared.args.interval, 25, 2_000, 1, True]
