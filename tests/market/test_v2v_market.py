"""The V2V market on the in-process Sandbox under a PoSOC genesis: EVs trade with each other hour
by hour within the tariff band, sellers' earnings wait in escrow, each window's fee (β·profit,
eq. 4.20) goes to the window's mLAG when paid, and is confiscated from the escrow after the
deadline, which bars the EV until it settles."""
from __future__ import annotations

import pytest
from market_sandbox import ACCOUNTS, Sandbox
from consensus.posoc.engine import MLAG, POSOC_ADDRESS
from consensus.rules.posoc import band
from genesis.config import Genesis, GenesisError
from genesis.devnet import devnet_genesis_document, posoc_genesis_document
from market.contracts.v2v_market import V2V_MARKET, FeeStatus
from vm.crypto import keccak256

HOUR = 10
WINDOW_HOURS = 2
V2V = V2V_MARKET.to_checksum()
SELLER, BUYER, OTHER, MLAG_EV = 16, 17, 18, 19
"""The four EVs (the last of devnet accounts #1..#19)."""
FEE_TYPES = ("int256", "uint256", "uint256", "uint8", "address")
CONFISCATED_TOPIC = keccak256(b"FeeConfiscated(address,uint64,uint256,uint256)")


def make_box() -> Sandbox:
    document = posoc_genesis_document([ACCOUNTS[39].address], evs=4, hour_seconds=HOUR, window_hours=WINDOW_HOURS)
    box = Sandbox(document)
    for ev in (SELLER, BUYER, OTHER, MLAG_EV):
        ok(box, ev, "FiatToken", "approve(address,uint256)", (V2V, 2**255))
        ok(box, ev, "EnergyToken", "approve(address,uint256)", (V2V, 2**255))
    return box


def ok(box, sender, to, signature, args=()):
    result = box.transact(sender, to, signature, args)
    assert result.ok, result.reason
    return result


def at_hour(box: Sandbox, hour: int) -> None:
    """The next block is the first of `hour`."""
    box.timestamp = hour * HOUR - 1


def on_peak_window_start(box: Sandbox) -> int:
    """The first hour, after the box's time, that opens a window and is on-peak (07:00 or 17:00 …)."""
    hour = box.timestamp // HOUR + 1
    while hour % WINDOW_HOURS or band(hour % 24) != "on":
        hour += 1
    return hour


def set_mlag(box: Sandbox, window: int, ev: int) -> None:
    state = box.state
    MLAG.write(state, POSOC_ADDRESS, window, ACCOUNTS[ev].address.to_checksum())
    box._commit(state)


def fiat(box, who) -> int:
    return box.call(0, "FiatToken", "balanceOf(address)", (ACCOUNTS[who].address.to_checksum(),), ("uint256",))[0]


def energy(box, who) -> int:
    return box.call(0, "EnergyToken", "balanceOf(address)", (ACCOUNTS[who].address.to_checksum(),), ("uint256",))[0]


def fee_of(box, who, window) -> tuple:
    return box.call(0, "V2VMarket", "feeOf(address,uint64)", (ACCOUNTS[who].address.to_checksum(), window), FEE_TYPES)


def trade_one_hour(box: Sandbox, mlag: int | None = MLAG_EV) -> tuple[int, int]:
    """SELLER offers 7 kWh at 11.0 ¢, BUYER bids for 5 kWh at 12.0 ¢ in an on-peak hour that opens
    a window; the next hour's first block clears them at 11.5 ¢. Returns (hour, window)."""
    hour = on_peak_window_start(box)
    window = hour // WINDOW_HOURS
    if mlag is not None:
        set_mlag(box, window, mlag)
    at_hour(box, hour)
    ok(box, SELLER, "V2VMarket", "placeAsk(uint256,uint256)", (7_000, 110))
    ok(box, BUYER, "V2VMarket", "placeBid(uint256,uint256)", (5_000, 120))
    box.mine()
    assert box.call(0, "V2VMarket", "openOrders()", returns=("uint256",)) == (2,)
    at_hour(box, hour + 1)
    box.mine()
    return hour, window


def test_evs_trade_within_the_tariff_band_and_sellers_earnings_wait_in_escrow():
    box = make_box()
    before = {ev: (fiat(box, ev), energy(box, ev)) for ev in (SELLER, BUYER)}
    hour, window = trade_one_hour(box)
    assert box.call(0, "V2VMarket", "clearingOf(uint256)", (hour,), ("uint256",) * 4 + ("bool",)) == \
        (115, 5_000, 1, 2, True)
    cost = -(-5_000 * 115 // 10_000)  # 57.5 → 58 cents
    assert energy(box, BUYER) == before[BUYER][1] + 5_000 and fiat(box, BUYER) == before[BUYER][0] - cost
    assert energy(box, SELLER) == before[SELLER][1] - 5_000 and fiat(box, SELLER) == before[SELLER][0]
    assert fee_of(box, SELLER, window)[:4] == (cost, cost, 0, FeeStatus.OPEN)
    assert fee_of(box, BUYER, window)[:4] == (-cost, 0, 0, FeeStatus.OPEN)
    retail, buyback = box.call(0, "V2VMarket", "hourPrices(uint64)", (hour,), ("uint256", "uint256"))
    assert (retail, buyback) == (129, 64)
    assert box.transact(SELLER, "V2VMarket", "placeAsk(uint256,uint256)", (1_000, 130)).reason == \
        "v2v: price outside the tariff band [64, 129]"
    assert box.transact(1, "V2VMarket", "placeBid(uint256,uint256)", (1_000, 100)).reason == \
        "v2v: caller may not buy energy"  # a prosumer, not an EV


def test_an_order_placed_in_the_clearing_block_stays_for_its_own_hour():
    box = make_box()
    hour = on_peak_window_start(box)
    at_hour(box, hour)
    ok(box, SELLER, "V2VMarket", "placeAsk(uint256,uint256)", (1_000, 100))
    at_hour(box, hour + 1)
    ok(box, BUYER, "V2VMarket", "placeBid(uint256,uint256)", (1_000, 120))  # first block of the next hour
    box.mine()
    assert box.call(0, "V2VMarket", "openOrders()", returns=("uint256",)) == (1,)
    assert box.call(0, "V2VMarket", "clearingOf(uint256)", (hour,), ("uint256",) * 4 + ("bool",)) == (0, 0, 0, 1, True)


def test_a_paid_fee_goes_to_the_mlag_and_releases_the_escrow():
    box = make_box()
    _, window = trade_one_hour(box)
    seller_before, mlag_before = fiat(box, SELLER), fiat(box, MLAG_EV)
    at_hour(box, (window + 1) * WINDOW_HOURS)
    box.mine()
    profit, escrow, fee, status, mlag = fee_of(box, SELLER, window)
    assert (profit, escrow, fee, status) == (58, 58, 58 * 50_000 // 1_000_000, FeeStatus.OWED)
    assert mlag == ACCOUNTS[MLAG_EV].address.to_checksum().lower()
    assert fee_of(box, BUYER, window)[2:4] == (0, FeeStatus.PAID)  # a loss owes nothing
    ok(box, SELLER, "V2VMarket", "payFee(uint64)", (window,))
    assert fiat(box, SELLER) == seller_before - fee + escrow and fiat(box, MLAG_EV) == mlag_before + fee
    assert fee_of(box, SELLER, window)[1:4] == (0, fee, FeeStatus.PAID)
    assert box.call(0, "V2VMarket", "feeTotals()", returns=("uint256",) * 3) == (fee, fee, 0)
    assert box.transact(SELLER, "V2VMarket", "payFee(uint64)", (window,)).reason == "v2v: no fee owed for that window"


def test_an_unpaid_fee_is_confiscated_and_bars_the_ev_until_it_settles():
    box = make_box()
    _, window = trade_one_hour(box)
    assert box.transact(SELLER, "V2VMarket", "payFee(uint64)", (window,)).reason == "v2v: the window has not ended"
    at_hour(box, (window + 1) * WINDOW_HOURS)
    box.mine()
    seller_before, mlag_before = fiat(box, SELLER), fiat(box, MLAG_EV)
    at_hour(box, (window + 2) * WINDOW_HOURS - 1)  # the last hour before the deadline: still owed
    box.mine()
    assert fee_of(box, SELLER, window)[3] == FeeStatus.OWED
    at_hour(box, (window + 2) * WINDOW_HOURS)  # grace (one window) has passed
    logs = box.mine()
    assert [log for log in logs if log.topics[0] == CONFISCATED_TOPIC]
    assert fee_of(box, SELLER, window)[1:4] == (58 - 2, 2, FeeStatus.CONFISCATED)
    assert fiat(box, MLAG_EV) == mlag_before + 2 and fiat(box, SELLER) == seller_before
    assert box.call(0, "V2VMarket", "barred(address)", (ACCOUNTS[SELLER].address.to_checksum(),), ("bool",)) == (True,)
    assert box.transact(SELLER, "V2VMarket", "placeAsk(uint256,uint256)", (1_000, 100)).reason == \
        "v2v: barred until its mining fee is paid"
    ok(box, SELLER, "V2VMarket", "payFee(uint64)", (window,))
    assert fiat(box, SELLER) == seller_before + 56 and fiat(box, MLAG_EV) == mlag_before + 2
    assert fee_of(box, SELLER, window)[3] == FeeStatus.SETTLED
    assert box.call(0, "V2VMarket", "barred(address)", (ACCOUNTS[SELLER].address.to_checksum(),), ("bool",)) == (False,)
    ok(box, SELLER, "V2VMarket", "placeAsk(uint256,uint256)", (1_000, 100))
    assert box.call(0, "V2VMarket", "feeTotals()", returns=("uint256",) * 3) == (2, 0, 2)


def test_a_window_without_an_mlag_waives_the_fee_and_fiat_is_conserved():
    box = make_box()
    evs = (SELLER, BUYER, OTHER, MLAG_EV)
    total = sum(fiat(box, ev) for ev in evs)
    _, window = trade_one_hour(box, mlag=None)
    at_hour(box, (window + 1) * WINDOW_HOURS)
    box.mine()
    assert fee_of(box, SELLER, window)[1:4] == (0, 0, FeeStatus.PAID)
    assert sum(fiat(box, ev) for ev in evs) == total
    assert box.call(0, "FiatToken", "balanceOf(address)", (V2V,), ("uint256",)) == (0,)


def test_the_v2v_market_needs_proof_of_state_of_charge():
    document = devnet_genesis_document(ACCOUNTS[0].address)
    document["contracts"]["V2VMarket"] = {"params": {}}
    with pytest.raises(GenesisError, match="V2VMarket"):
        Genesis.from_json(document)
    bad = posoc_genesis_document([ACCOUNTS[39].address])
    bad["contracts"]["V2VMarket"]["params"] = {"betaPpm": 0}
    with pytest.raises(GenesisError, match="betaPpm"):
        Genesis.from_json(bad)
