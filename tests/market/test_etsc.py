"""ETSC (paper 000, Algorithm 2) as a wallet uses it: the admin empowers prosumers, their meter
oracles post generation and consumption, a prosumer buys energy from a retailer in elecoins
and both look their accounts up with the six queries; web3.py contracts from `grid_contracts`,
signed transactions, receipts, decoded events and revert reasons. Then the genesis params,
checked in process."""
from __future__ import annotations

import os
import re

import pytest
from eth_account import Account
from hypothesis import event, given, settings
from hypothesis import strategies as st
from market_sandbox import Sandbox
from market.contracts.etsc import ETSC, DEFAULT_UNIT_PRICE
from vm.crypto import keccak256
from wallet import ACCOUNTS as DEVNET, assert_reverts, events, fee_of, mined, submit, transact

ELC = 10**18
PROSUMER, RETAILER, METER_ORACLE = 1, 2, 5
ADMIN = DEVNET[0]


def fresh_account(label: str):
    """A deterministic account outside the devnet's, registered by the tests themselves."""
    return Account.from_key(keccak256(b"test_etsc " + label.encode()))


SELLER, BUYER, NO_TRADING, NO_GENERATION, UNEMPOWERED, NEWCOMER = (
    fresh_account(n) for n in ("seller", "buyer", "no-trading", "no-generation", "unempowered", "newcomer"))
SELLER_METER, BUYER_METER, UNEMPOWERED_METER, STRANGER, OUTSIDER = (
    fresh_account(n) for n in ("seller-meter", "buyer-meter", "unempowered-meter", "stranger", "outsider"))
"""STRANGER is a registered prosumer with no ETSC account or meter; OUTSIDER is not registered."""
RIGHTS = {SELLER: ("seller", True, True), BUYER: ("buyer", False, True),
          NO_TRADING: ("no-trading", True, False), NO_GENERATION: ("no-generation", False, True)}
"""Who is empowered with which (name, generation right, trading right)."""


def accounts(etsc, account) -> tuple[int, int, int, int]:
    """(availPower, avaElecoins, totalGenPower, totalUsePower) through four of the six queries."""
    f = etsc.functions
    return (f.queryAvailPower(account.address).call(), f.queryElecoins(account.address).call(),
            f.queryTotalGenPower(account.address).call(), f.queryTotalUsePower(account.address).call())


@pytest.fixture(scope="module")
def members(w3, market):
    """Fresh prosumers and meter oracles, registered and given elecoins by the admin; the
    seller's, the buyer's and the unempowered prosumer's meters registered in Meters."""
    registry, meters = market["Registry"], market["Meters"]
    roles = {**{a: PROSUMER for a in (SELLER, BUYER, NO_TRADING, NO_GENERATION, UNEMPOWERED, STRANGER)},
             NEWCOMER: RETAILER, **{a: METER_ORACLE for a in (SELLER_METER, BUYER_METER, UNEMPOWERED_METER)}}
    setup = []
    for index, (account, role) in enumerate(roles.items()):
        setup.append(submit(w3, ADMIN, registry.functions.register(account.address, role, f"etsc-{index}"),
                            gas=300_000))
        setup.append(submit(w3, ADMIN, to=account.address, value=50 * ELC))
    assert all(r.status == 1 for r in mined(w3, *setup))
    meters_set = [submit(w3, ADMIN, meters.functions.registerMeter(p.address, m.address))
                  for p, m in ((SELLER, SELLER_METER), (BUYER, BUYER_METER), (UNEMPOWERED, UNEMPOWERED_METER))]
    assert all(r.status == 1 for r in mined(w3, *meters_set))


@pytest.fixture(scope="module")
def empowered(w3, etsc, members):
    receipts = mined(w3, *(submit(w3, ADMIN, etsc.functions.empower(a.address, *RIGHTS[a]), gas=400_000)
                           for a in RIGHTS))
    assert all(r.status == 1 for r in receipts)
    return dict(zip(RIGHTS, receipts))


def test_devnet_prosumers_trade_at_once(w3, etsc):
    """The devnet's prosumers are empowered in its genesis: #3's meter posts generation, and
    #4 buys from #3 with no setup."""
    retailer, prosumer, meter = DEVNET[3], DEVNET[4], DEVNET[19 + 3]
    assert etsc.functions.queryRights(retailer.address).call() == [True, True]
    assert etsc.functions.queryUserName(prosumer.address).call() == "devnet-4"
    assert transact(w3, meter, etsc.functions.generation(retailer.address, 2_000)).status == 1
    q = etsc.functions.unitPrice().call()
    receipt = transact(w3, prosumer, etsc.functions.trade(retailer.address, 250), value=250 * q)
    assert events(etsc, "Trade", receipt) == [(prosumer.address, retailer.address, 250, q, 250 * q)]
    assert accounts(etsc, prosumer) == (250, 0, 0, 0)
    assert accounts(etsc, retailer) == (1_750, 250 * q, 2_000, 0)


# -- Registration module ---------------------------------------------------------------------
def test_empower_registers_with_rights_and_zeroed_accounts(w3, etsc, empowered):
    for account, receipt in empowered.items():
        name, generation_right, trading_right = RIGHTS[account]
        assert events(etsc, "Empowered", receipt) == [(account.address, name, generation_right, trading_right)]
        assert etsc.functions.isEmpowered(account.address).call()
        assert etsc.functions.queryUserName(account.address).call() == name
        assert etsc.functions.queryRights(account.address).call() == [generation_right, trading_right]
        assert accounts(etsc, account) == (0, 0, 0, 0)
    assert [a.address for a in RIGHTS] == etsc.functions.prosumers().call()[-len(RIGHTS):]
    assert not etsc.functions.isEmpowered(UNEMPOWERED.address).call()
    assert etsc.functions.queryUserName(UNEMPOWERED.address).call() == ""


def test_empower_refusals(etsc, empowered):
    call = etsc.functions.empower(NEWCOMER.address, "newcomer", True, True)
    assert_reverts(SELLER, call, "etsc: caller is not an admin")
    assert_reverts(ADMIN, etsc.functions.empower(SELLER.address, "again", True, True),
                   "etsc: prosumer already empowered")
    assert_reverts(ADMIN, etsc.functions.empower(SELLER_METER.address, "meter", True, True),
                   "etsc: account is not a registered prosumer or retailer")
    assert_reverts(ADMIN, etsc.functions.empower(OUTSIDER.address, "outsider", True, True),
                   "etsc: account is not a registered prosumer or retailer")
    assert_reverts(ADMIN, etsc.functions.empower(NEWCOMER.address, "", True, True), "etsc: name must be 1 to 64 bytes")
    assert_reverts(ADMIN, etsc.functions.empower(NEWCOMER.address, "n" * 65, True, True),
                   "etsc: name must be 1 to 64 bytes")
    call.call({"from": ADMIN.address})  # a registered retailer may be empowered


# -- Electricity clearing module ---------------------------------------------------------------
def test_generation_and_consumption_from_the_meter_oracle(w3, etsc, empowered):
    receipt = transact(w3, SELLER_METER, etsc.functions.generation(SELLER.address, 5_000))
    assert events(etsc, "Generation", receipt) == [(SELLER.address, SELLER_METER.address, 5_000, 5_000, 5_000)]
    assert accounts(etsc, SELLER) == (5_000, 0, 5_000, 0)

    receipt = transact(w3, SELLER_METER, etsc.functions.consumption(SELLER.address, 1_200))
    assert events(etsc, "Consumption", receipt) == [
        (SELLER.address, SELLER_METER.address, 1_200, 1_200, 3_800, 1_200)]
    assert accounts(etsc, SELLER) == (3_800, 0, 5_000, 1_200)

    # the buyer used more than it had: availPower stops at zero, the rest came from the grid
    transact(w3, BUYER_METER, etsc.functions.generation(BUYER.address, 300))
    receipt = transact(w3, BUYER_METER, etsc.functions.consumption(BUYER.address, 500))
    assert events(etsc, "Consumption", receipt) == [(BUYER.address, BUYER_METER.address, 500, 300, 0, 500)]
    assert accounts(etsc, BUYER) == (0, 0, 300, 500)


def test_generation_posted_by_a_stranger_reverts(w3, etsc, empowered):
    reason = "etsc: caller is not the prosumer's meter oracle"
    assert_reverts(STRANGER, etsc.functions.generation(SELLER.address, 1_000), reason)
    assert_reverts(BUYER_METER, etsc.functions.generation(SELLER.address, 1_000), reason)  # another's meter
    assert_reverts(SELLER, etsc.functions.generation(SELLER.address, 1_000), reason)  # nor the prosumer itself
    assert_reverts(STRANGER, etsc.functions.consumption(SELLER.address, 1_000), reason)
    before = accounts(etsc, SELLER)
    receipt = transact(w3, STRANGER, etsc.functions.generation(SELLER.address, 1_000), gas=200_000)
    assert receipt.status == 0 and receipt.logs == []
    assert accounts(etsc, SELLER) == before
    assert_reverts(UNEMPOWERED_METER, etsc.functions.generation(UNEMPOWERED.address, 1_000),
                   "etsc: prosumer not empowered")


# -- Transaction module ------------------------------------------------------------------------
def test_trade_clears_both_accounts_at_the_unit_price(w3, etsc, empowered):
    q = etsc.functions.unitPrice().call()
    assert q > 0
    y = 1_000
    seller_before, buyer_before = accounts(etsc, SELLER), accounts(etsc, BUYER)
    assert seller_before[0] >= y
    assert etsc.functions.checkQualification(BUYER.address, SELLER.address, y).call() == \
        [False, "etsc: prosumer has too few elecoins"]

    # trade is payable: what the buyer sends is credited to its elecoin account first
    balance, held = w3.eth.get_balance(BUYER.address), w3.eth.get_balance(etsc.address)
    receipt = transact(w3, BUYER, etsc.functions.trade(SELLER.address, y), value=y * q)
    assert receipt.status == 1
    assert events(etsc, "Deposited", receipt) == [(BUYER.address, y * q, buyer_before[1] + y * q)]
    assert events(etsc, "Trade", receipt) == [(BUYER.address, SELLER.address, y, q, y * q)]
    # Algorithm 2: prosumer availPower + y, elecoins - y·Q; retailer availPower - y, elecoins + y·Q
    assert accounts(etsc, BUYER) == (buyer_before[0] + y, buyer_before[1], *buyer_before[2:])
    assert accounts(etsc, SELLER) == (seller_before[0] - y, seller_before[1] + y * q, *seller_before[2:])
    assert w3.eth.get_balance(BUYER.address) == balance - y * q - fee_of(receipt)
    assert w3.eth.get_balance(etsc.address) == held + y * q

    # the retailer takes its earnings out
    balance = w3.eth.get_balance(SELLER.address)
    receipt = transact(w3, SELLER, etsc.functions.withdraw(y * q))
    assert events(etsc, "Withdrawn", receipt) == [(SELLER.address, y * q, seller_before[1])]
    assert w3.eth.get_balance(SELLER.address) == balance + y * q - fee_of(receipt)
    assert etsc.functions.queryElecoins(SELLER.address).call() == seller_before[1]


def test_deposit_then_trade_from_the_deposit(w3, etsc, empowered):
    q, y = etsc.functions.unitPrice().call(), 400
    elecoins = etsc.functions.queryElecoins(BUYER.address).call()
    receipt = transact(w3, BUYER, etsc.functions.deposit(), value=y * q)
    assert events(etsc, "Deposited", receipt) == [(BUYER.address, y * q, elecoins + y * q)]
    assert etsc.functions.checkQualification(BUYER.address, SELLER.address, y).call() == [True, ""]
    receipt = transact(w3, BUYER, etsc.functions.trade(SELLER.address, y))
    assert events(etsc, "Trade", receipt) == [(BUYER.address, SELLER.address, y, q, y * q)]
    assert etsc.functions.queryElecoins(BUYER.address).call() == elecoins


def test_trade_without_rights_reverts(w3, etsc, empowered):
    q = etsc.functions.unitPrice().call()
    transact(w3, SELLER_METER, etsc.functions.generation(SELLER.address, 100))
    assert_reverts(NO_TRADING, etsc.functions.trade(SELLER.address, 10), "etsc: prosumer has no trading right",
                   value=10 * q)
    assert_reverts(BUYER, etsc.functions.trade(NO_TRADING.address, 10), "etsc: retailer has no trading right",
                   value=10 * q)
    assert_reverts(BUYER, etsc.functions.trade(NO_GENERATION.address, 10), "etsc: retailer has no generation right",
                   value=10 * q)
    assert_reverts(BUYER, etsc.functions.trade(UNEMPOWERED.address, 10), "etsc: retailer not empowered",
                   value=10 * q)
    assert_reverts(UNEMPOWERED, etsc.functions.trade(SELLER.address, 10), "etsc: prosumer not empowered")
    assert_reverts(UNEMPOWERED, etsc.functions.trade(SELLER.address, 10), "etsc: account not empowered",
                   value=10 * q)
    assert etsc.functions.checkQualification(NO_TRADING.address, SELLER.address, 10).call() == \
        [False, "etsc: prosumer has no trading right"]
    before = accounts(etsc, NO_TRADING), accounts(etsc, SELLER)
    receipt = transact(w3, NO_TRADING, etsc.functions.trade(SELLER.address, 10), value=10 * q, gas=300_000)
    assert receipt.status == 0 and receipt.logs == []
    assert (accounts(etsc, NO_TRADING), accounts(etsc, SELLER)) == before


def test_trade_with_too_little_energy_or_elecoins_reverts(w3, etsc, empowered):
    q = etsc.functions.unitPrice().call()
    avail = etsc.functions.queryAvailPower(SELLER.address).call()
    assert_reverts(BUYER, etsc.functions.trade(SELLER.address, avail + 1),
                   "etsc: retailer has too little available power", value=(avail + 1) * q)
    short = q - etsc.functions.queryElecoins(BUYER.address).call()  # what one Wh still needs
    assert short > 0
    assert_reverts(BUYER, etsc.functions.trade(SELLER.address, 1), "etsc: prosumer has too few elecoins",
                   value=short - 1)
    assert_reverts(BUYER, etsc.functions.trade(SELLER.address, 0), "etsc: zero amount")
    assert_reverts(SELLER, etsc.functions.trade(SELLER.address, 1), "etsc: prosumer and retailer are the same account",
                   value=q)


def test_deposit_and_withdraw_refusals(etsc, empowered):
    assert_reverts(BUYER, etsc.functions.deposit(), "etsc: zero amount")
    assert_reverts(UNEMPOWERED, etsc.functions.deposit(), "etsc: account not empowered", value=ELC)
    elecoins = etsc.functions.queryElecoins(BUYER.address).call()
    assert_reverts(BUYER, etsc.functions.withdraw(elecoins + 1), "etsc: withdrawal exceeds the elecoin balance")
    assert_reverts(BUYER, etsc.functions.withdraw(0), "etsc: zero amount")


# -- the unit price Q ------------------------------------------------------------------------------
def test_admin_sets_the_unit_price(w3, etsc, empowered):
    q = etsc.functions.unitPrice().call()
    assert_reverts(SELLER, etsc.functions.setUnitPrice(q + 1), "etsc: caller is not an admin")
    assert_reverts(ADMIN, etsc.functions.setUnitPrice(0), "etsc: unit price must be 1 to")
    receipt = transact(w3, ADMIN, etsc.functions.setUnitPrice(2 * q))
    assert events(etsc, "UnitPriceSet", receipt) == [(ADMIN.address, 2 * q)]
    assert etsc.functions.unitPrice().call() == 2 * q
    transact(w3, ADMIN, etsc.functions.setUnitPrice(q))


def test_contract_holds_exactly_the_elecoin_accounts(w3, etsc, empowered):
    held = sum(etsc.functions.queryElecoins(a).call() for a in etsc.functions.prosumers().call())
    assert w3.eth.get_balance(etsc.address) == held


# -- genesis params, in process ----------------------------------------------------------------
GENESIS_PROSUMER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_genesis_params_are_checked():
    assert ETSC.parse_params({})["unitPrice"] == DEFAULT_UNIT_PRICE
    parsed = ETSC.parse_params({"unitPrice": "0x10", "prosumers": {
        GENESIS_PROSUMER: {"name": "devnet-1", "generationRight": True, "tradingRight": False}}})
    assert parsed["unitPrice"] == 16
    assert list(parsed["prosumers"].values()) == [
        {"userName": "devnet-1", "generationRight": True, "tradingRight": False}]
    for params, message in (
            ({"unitPrice": 0}, "unitPrice: must be at least 1"),
            ({"unitPrice": 2**129}, "unitPrice"),
            ({"meters": "0x" + "00" * 20}, "the zero address is not the Meters contract"),
            ({"prosumers": {GENESIS_PROSUMER: {"name": "x"}}}, 'expected {"name", "generationRight", "tradingRight"}'),
            ({"prosumers": {GENESIS_PROSUMER: {"name": "x", "generationRight": 1, "tradingRight": True}}},
             "generationRight: expected true or false"),
            ({"prosumers": {GENESIS_PROSUMER: {"name": "", "generationRight": True, "tradingRight": True}}},
             "name: expected a non-empty string"),
            ({"fee": 1}, "unknown params ['fee']")):
        with pytest.raises(ValueError, match=re.escape(message)):
            ETSC.parse_params(params)


def test_genesis_prosumers_are_empowered_with_zeroed_accounts():
    from vm.state import State
    from vm.types import Address

    etsc = ETSC(params={"prosumers": {
        GENESIS_PROSUMER: {"name": "devnet-1", "generationRight": True, "tradingRight": True}}})
    state = State({})
    etsc.write_genesis(state)
    assert ETSC.user_at(state, etsc.address, Address.from_hex(GENESIS_PROSUMER)) == {
        "userName": "devnet-1", "generationRight": True, "tradingRight": True}
    assert ETSC.user_at(state, etsc.address, Address(b"\x01" * 20)) is None
    assert ETSC.accounts_at(state, etsc.address, Address.from_hex(GENESIS_PROSUMER)) == {
        "availPower": 0, "avaElecoins": 0, "totalGenPower": 0, "totalUsePower": 0}
    assert state.get_code(etsc.address).startswith(b"\xfegridnode native contract: ETSC")


# -- Algorithm 2 as a property, in process ----------------------------------------------------------
PARTIES = (1, 2, 3)
"""Devnet prosumers, empowered in its genesis with both rights; prosumer #i's meter is #19+i."""
Q = DEFAULT_UNIT_PRICE
party = st.sampled_from(PARTIES)
wh = st.integers(0, 4_000)
wei = st.integers(0, 3_000) | st.integers(0, 3_000).map(lambda n: n * Q)
operations = st.one_of(
    st.tuples(st.just("generation"), party, wh),
    st.tuples(st.just("consumption"), party, wh),
    st.tuples(st.just("stranger"), party, wh),
    st.tuples(st.just("deposit"), party, wei),
    st.tuples(st.just("withdraw"), party, wei),
    st.tuples(st.just("trade"), party, party, st.integers(0, 800), st.none() | wei))
"""A trade sends `wei` along, or (None) exactly its price."""


def _expected(model: dict, operation: tuple) -> str | None:
    """The revert reason Algorithm 2 predicts for `operation` on `model` (None: it succeeds),
    and the model updated in place when it succeeds."""
    kind, who, *rest = operation
    account = model[who]
    if kind == "generation":
        account["avail"] += rest[0]
        account["gen"] += rest[0]
    elif kind == "consumption":
        account["avail"] -= min(rest[0], account["avail"])
        account["use"] += rest[0]
    elif kind == "stranger":
        return "etsc: caller is not the prosumer's meter oracle"
    elif kind == "deposit":
        if rest[0] == 0:
            return "etsc: zero amount"
        account["elecoins"] += rest[0]
    elif kind == "withdraw":
        if rest[0] == 0:
            return "etsc: zero amount"
        if rest[0] > account["elecoins"]:
            return "etsc: withdrawal exceeds the elecoin balance"
        account["elecoins"] -= rest[0]
    else:
        retailer, amount, sent = rest
        sent = amount * Q if sent is None else sent
        seller = model[retailer]
        if amount == 0:
            return "etsc: zero amount"
        if who == retailer:
            return "etsc: prosumer and retailer are the same account"
        if seller["avail"] < amount:
            return "etsc: retailer has too little available power"
        if account["elecoins"] + sent < amount * Q:
            return "etsc: prosumer has too few elecoins"
        account["avail"] += amount
        account["elecoins"] += sent - amount * Q
        seller["avail"] -= amount
        seller["elecoins"] += amount * Q
    return None


def _send(box: Sandbox, operation: tuple):
    kind, who, *rest = operation
    prosumer = DEVNET[who].address
    if kind in ("generation", "consumption"):
        return box.transact(19 + who, "ETSC", f"{kind}(address,uint256)", (prosumer, rest[0]))
    if kind == "stranger":  # another prosumer's meter
        other = PARTIES[(PARTIES.index(who) + 1) % len(PARTIES)]
        return box.transact(19 + other, "ETSC", "generation(address,uint256)", (prosumer, rest[0]))
    if kind == "deposit":
        return box.transact(who, "ETSC", "deposit()", value=rest[0])
    if kind == "withdraw":
        return box.transact(who, "ETSC", "withdraw(uint256)", (rest[0],))
    retailer, amount, sent = rest
    sent = amount * Q if sent is None else sent
    return box.transact(who, "ETSC", "trade(address,uint256)", (DEVNET[retailer].address, amount), value=sent)


@settings(max_examples=int(os.environ.get("GRIDNODE_FUZZ_EXAMPLES", "200")), deadline=None)
@given(st.lists(operations, max_size=25))
def test_the_accounts_follow_algorithm_2_and_the_elecoins_add_up(sequence):
    """Random sequences of meter posts, deposits, trades and withdrawals by three prosumers: each
    call succeeds or reverts exactly as the model says, the four accounts match the model, and
    elecoins only move between wallets and the contract, which holds exactly the avaElecoins."""
    box = Sandbox()
    etsc = box.address("ETSC")
    model = {p: {"avail": 0, "elecoins": 0, "gen": 0, "use": 0} for p in PARTIES}
    wallets = (*PARTIES, *(19 + p for p in PARTIES))
    total = sum(box.balance(w) for w in wallets) + box.balance(etsc)
    for operation in [("generation", p, 2_000) for p in PARTIES] + sequence:  # start with energy to sell
        result = _send(box, operation)
        reason = _expected(model, operation)
        assert (result.ok, result.reason) == (reason is None, reason), operation
        event(f"{operation[0]}: {reason or 'ok'}")
        for p in PARTIES:
            assert ETSC.accounts_at(box.state, etsc, DEVNET[p].address) == {
                "availPower": model[p]["avail"], "avaElecoins": model[p]["elecoins"],
                "totalGenPower": model[p]["gen"], "totalUsePower": model[p]["use"]}
        assert box.balance(etsc) == sum(model[p]["elecoins"] for p in PARTIES)
        assert sum(box.balance(w) for w in wallets) + box.balance(etsc) == total
