"""The elecoin exchange (paper 000) as a wallet uses it: an edge server posts a price and funds
a reserve, a prosumer approves the exchange in fiat and buys elecoins; web3.py contracts
from `grid_contracts`, signed transactions, receipts, decoded events and revert reasons.
Then the genesis params, checked in process."""
from __future__ import annotations

import re

import pytest
from eth_account import Account
from market.contracts.exchange import ElecoinExchange, cost_of
from vm.crypto import keccak256
from web3.exceptions import ContractLogicError
from wallet import ACCOUNTS, assert_reverts, events, fee_of, mined, submit, transact

ELC = 10**18
EDGE_SERVER, PROSUMER = 3, 1
ADMIN, BUYER, OTHER_BUYER = ACCOUNTS[0], ACCOUNTS[1], ACCOUNTS[2]
DEVNET_SERVER = ACCOUNTS[39]
"""The devnet's edge server: price and reserve set in its genesis."""


def fresh_account(label: str):
    """A deterministic account outside the devnet's 20, registered by the tests themselves."""
    return Account.from_key(keccak256(b"test_exchange " + label.encode()))


SERVER, IDLE_SERVER, REVOKED_SERVER = (fresh_account(n) for n in ("server", "idle", "revoked"))


@pytest.fixture(scope="module")
def servers(w3, market):
    """Three edge servers registered and given elecoins for gas and reserves by the admin;
    REVOKED_SERVER posts a price, funds its reserve and then loses its role."""
    registry = market["Registry"]
    setup = []
    for account, name in ((SERVER, "edge-main"), (IDLE_SERVER, "edge-idle"), (REVOKED_SERVER, "edge-revoked")):
        setup.append(submit(w3, ADMIN, registry.functions.register(account.address, EDGE_SERVER, name),
                            gas=300_000))
        setup.append(submit(w3, ADMIN, to=account.address, value=100 * ELC))
    assert all(r.status == 1 for r in mined(w3, *setup))
    exchange = market["ElecoinExchange"]
    assert all(r.status == 1 for r in mined(
        w3, submit(w3, REVOKED_SERVER, exchange.functions.postPrice(1200)),
        submit(w3, REVOKED_SERVER, exchange.functions.fund(), value=5 * ELC, gas=300_000)))
    assert transact(w3, ADMIN, registry.functions.revoke(REVOKED_SERVER.address)).status == 1
    return SERVER


# -- the genesis bounds ------------------------------------------------------------------------
def test_views_show_the_genesis_bounds_and_token(w3, exchange, fiat):
    assert exchange.address == "0x6772696400000000000000000000000000000013"
    assert w3.eth.get_code(exchange.address).startswith(b"\xfegridnode native contract: ElecoinExchange")
    assert (exchange.functions.minPrice().call(), exchange.functions.maxPrice().call()) == (1000, 1900)
    assert exchange.functions.fiatToken().call() == fiat.address


def test_the_devnet_server_sells_at_once(w3, exchange, fiat):
    """A new user of the devnet buys elecoins without any setup: approve, then buyToken."""
    assert DEVNET_SERVER.address in exchange.functions.servers().call()
    price = exchange.functions.priceOf(DEVNET_SERVER.address).call()
    assert exchange.functions.minPrice().call() <= price <= exchange.functions.maxPrice().call()
    buyer = ACCOUNTS[7]
    paid = exchange.functions.quote(DEVNET_SERVER.address, 10 * ELC).call()
    assert paid == 10 * price
    transact(w3, buyer, fiat.functions.approve(exchange.address, paid))
    balance = w3.eth.get_balance(buyer.address)
    receipt = transact(w3, buyer, exchange.functions.buyToken(DEVNET_SERVER.address, 10 * ELC))
    assert events(exchange, "TokenBought", receipt) == [(buyer.address, DEVNET_SERVER.address, 10 * ELC, price, paid)]
    assert w3.eth.get_balance(buyer.address) == balance + 10 * ELC - fee_of(receipt)


# -- the edge server's side ----------------------------------------------------------------------
def test_post_price_within_the_bounds(w3, exchange, servers):
    low, high = exchange.functions.minPrice().call(), exchange.functions.maxPrice().call()
    receipt = transact(w3, SERVER, exchange.functions.postPrice(high))
    assert receipt.status == 1
    assert events(exchange, "PricePosted", receipt) == [(SERVER.address, high)]
    assert exchange.functions.priceOf(SERVER.address).call() == high
    assert SERVER.address in exchange.functions.servers().call()
    # a new price replaces the old one; the bounds are inclusive
    receipt = transact(w3, SERVER, exchange.functions.postPrice(low))
    assert events(exchange, "PricePosted", receipt) == [(SERVER.address, low)]
    assert exchange.functions.priceOf(SERVER.address).call() == low
    assert exchange.functions.servers().call().count(SERVER.address) == 1


def test_price_outside_the_bounds_reverts(w3, exchange, servers):
    low, high = exchange.functions.minPrice().call(), exchange.functions.maxPrice().call()
    reason = f"exchange: price outside the bounds [{low}, {high}]"
    assert_reverts(SERVER, exchange.functions.postPrice(low - 1), reason)
    assert_reverts(SERVER, exchange.functions.postPrice(high + 1), reason)
    before = exchange.functions.priceOf(SERVER.address).call()
    receipt = transact(w3, SERVER, exchange.functions.postPrice(high + 1), gas=200_000)  # mined anyway: fails
    assert receipt.status == 0 and receipt.logs == []
    assert exchange.functions.priceOf(SERVER.address).call() == before


def test_only_edge_servers_post_prices_and_fund(exchange, servers):
    low = exchange.functions.minPrice().call()
    assert_reverts(BUYER, exchange.functions.postPrice(low), "exchange: caller is not an edge server")
    assert_reverts(BUYER, exchange.functions.fund(), "exchange: caller is not an edge server", value=ELC)
    assert_reverts(SERVER, exchange.functions.fund(), "exchange: zero amount")


def test_fund_and_withdraw_the_reserve(w3, exchange, servers):
    reserve = exchange.functions.reserveOf(SERVER.address).call()
    held = w3.eth.get_balance(exchange.address)
    receipt = transact(w3, SERVER, exchange.functions.fund(), value=20 * ELC)
    assert events(exchange, "ReserveFunded", receipt) == [(SERVER.address, 20 * ELC, reserve + 20 * ELC)]
    assert exchange.functions.reserveOf(SERVER.address).call() == reserve + 20 * ELC
    assert w3.eth.get_balance(exchange.address) == held + 20 * ELC

    balance = w3.eth.get_balance(SERVER.address)
    receipt = transact(w3, SERVER, exchange.functions.withdrawReserve(3 * ELC))
    assert events(exchange, "ReserveWithdrawn", receipt) == [(SERVER.address, 3 * ELC, reserve + 17 * ELC)]
    assert w3.eth.get_balance(SERVER.address) == balance + 3 * ELC - fee_of(receipt)
    assert exchange.functions.reserveOf(SERVER.address).call() == reserve + 17 * ELC
    assert w3.eth.get_balance(exchange.address) == held + 17 * ELC

    assert_reverts(SERVER, exchange.functions.withdrawReserve(reserve + 17 * ELC + 1),
                   "exchange: withdrawal exceeds the reserve")
    assert_reverts(SERVER, exchange.functions.withdrawReserve(0), "exchange: zero amount")
    assert_reverts(BUYER, exchange.functions.withdrawReserve(1), "exchange: withdrawal exceeds the reserve")


# -- the buyer's side ---------------------------------------------------------------------------
def test_buy_token_pays_fiat_and_delivers_elecoins(w3, exchange, fiat, servers):
    price = exchange.functions.minPrice().call() + 1
    transact(w3, SERVER, exchange.functions.postPrice(price))
    if exchange.functions.reserveOf(SERVER.address).call() < 10 * ELC:
        transact(w3, SERVER, exchange.functions.fund(), value=10 * ELC)
    x = 2 * ELC + 1  # a wei beyond two elecoins costs one more fiat base unit: rounded up
    paid = exchange.functions.quote(SERVER.address, x).call()
    assert paid == cost_of(price, x) == 2 * price + 1
    assert transact(w3, BUYER, fiat.functions.approve(exchange.address, paid)).status == 1

    elecoins, cash = w3.eth.get_balance(BUYER.address), fiat.functions.balanceOf(BUYER.address).call()
    server_cash = fiat.functions.balanceOf(SERVER.address).call()
    reserve, held = exchange.functions.reserveOf(SERVER.address).call(), w3.eth.get_balance(exchange.address)
    assert exchange.functions.buyToken(SERVER.address, x).call({"from": BUYER.address}) == paid
    receipt = transact(w3, BUYER, exchange.functions.buyToken(SERVER.address, x))
    assert receipt.status == 1
    assert events(exchange, "TokenBought", receipt) == [(BUYER.address, SERVER.address, x, price, paid)]
    assert events(fiat, "Transfer", receipt) == [(BUYER.address, SERVER.address, paid)]
    assert w3.eth.get_balance(BUYER.address) == elecoins + x - fee_of(receipt)
    assert fiat.functions.balanceOf(BUYER.address).call() == cash - paid
    assert fiat.functions.balanceOf(SERVER.address).call() == server_cash + paid
    assert fiat.functions.allowance(BUYER.address, exchange.address).call() == 0
    assert exchange.functions.reserveOf(SERVER.address).call() == reserve - x
    assert w3.eth.get_balance(exchange.address) == held - x
    # a wallet finds its purchases by the indexed buyer
    logs = exchange.events.TokenBought().get_logs(from_block=receipt.blockNumber, to_block=receipt.blockNumber,
                                                  argument_filters={"buyer": BUYER.address})
    assert [log.transactionHash for log in logs] == [receipt.transactionHash]


def test_buy_token_above_the_reserve_reverts(w3, exchange, fiat, servers):
    reserve = exchange.functions.reserveOf(SERVER.address).call()
    assert reserve > 0
    transact(w3, OTHER_BUYER, fiat.functions.approve(exchange.address, 2**256 - 1))
    call = exchange.functions.buyToken(SERVER.address, reserve + 1)
    assert_reverts(OTHER_BUYER, call, "exchange: purchase exceeds the server's reserve")
    cash = fiat.functions.balanceOf(OTHER_BUYER.address).call()
    receipt = transact(w3, OTHER_BUYER, call, gas=300_000)
    assert receipt.status == 0 and receipt.logs == []
    assert exchange.functions.reserveOf(SERVER.address).call() == reserve
    assert fiat.functions.balanceOf(OTHER_BUYER.address).call() == cash


def test_buy_token_refusals(w3, exchange, fiat, servers):
    assert_reverts(OTHER_BUYER, exchange.functions.buyToken(SERVER.address, 0), "exchange: zero amount")
    assert_reverts(OTHER_BUYER, exchange.functions.buyToken(IDLE_SERVER.address, ELC),
                   "exchange: no price posted by this server")
    assert_reverts(OTHER_BUYER, exchange.functions.buyToken(REVOKED_SERVER.address, ELC),
                   "exchange: server is not an edge server")
    assert_reverts(OTHER_BUYER, exchange.functions.quote(IDLE_SERVER.address, ELC),
                   "exchange: no price posted by this server")
    # without an allowance the fiat token refuses, and its reason reaches the wallet
    transact(w3, BUYER, fiat.functions.approve(exchange.address, 0))
    assert_reverts(BUYER, exchange.functions.buyToken(SERVER.address, ELC), "fiat: insufficient allowance")
    # elecoins are bought with fiat, not sent along (web3 refuses that itself; the node does too)
    data = exchange.functions.buyToken(SERVER.address, ELC)._encode_transaction_data()
    with pytest.raises(ContractLogicError, match="ElecoinExchange: buyToken is not payable"):
        w3.eth.call({"from": BUYER.address, "to": exchange.address, "value": 1, "data": data})


def test_a_revoked_server_keeps_its_reserve(w3, exchange, market, servers):
    """Revoked, it can send nothing; registered again (in any role) it takes its reserve back."""
    assert exchange.functions.reserveOf(REVOKED_SERVER.address).call() == 5 * ELC
    assert transact(w3, ADMIN, market["Registry"].functions.register(
        REVOKED_SERVER.address, PROSUMER, "edge-retired")).status == 1
    assert_reverts(REVOKED_SERVER, exchange.functions.postPrice(exchange.functions.minPrice().call()),
                   "exchange: caller is not an edge server")
    balance = w3.eth.get_balance(REVOKED_SERVER.address)
    receipt = transact(w3, REVOKED_SERVER, exchange.functions.withdrawReserve(5 * ELC))
    assert events(exchange, "ReserveWithdrawn", receipt) == [(REVOKED_SERVER.address, 5 * ELC, 0)]
    assert w3.eth.get_balance(REVOKED_SERVER.address) == balance + 5 * ELC - fee_of(receipt)


# -- genesis params, in process ----------------------------------------------------------------
GENESIS_SERVER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_genesis_params_are_checked():
    parsed = ElecoinExchange.parse_params({"minPrice": "10", "maxPrice": "0x13",
                                           "servers": {GENESIS_SERVER: {"price": 12, "reserve": str(5 * ELC)}}})
    assert (parsed["minPrice"], parsed["maxPrice"]) == (10, 19)
    assert list(parsed["servers"].values()) == [{"price": 12, "reserve": 5 * ELC}]
    for params, message in (
            ({"minPrice": 0}, "minPrice: must be at least 1"),
            ({"minPrice": 20, "maxPrice": 19}, "minPrice 20 is above maxPrice 19"),
            ({"maxPrice": 2**129}, "maxPrice"),
            ({"servers": {GENESIS_SERVER: {"price": 5000}}}, "is outside the bounds"),
            ({"servers": {GENESIS_SERVER: {"fee": 1}}}, 'expected {"price": p, "reserve": wei}'),
            ({"servers": {"0x1234": {}}}, "not an address"),
            ({"fiatToken": "0x" + "00" * 20}, "the zero address is not a token"),
            ({"spread": 1}, "unknown params ['spread']")):
        with pytest.raises(ValueError, match=re.escape(message)):
            ElecoinExchange.parse_params(params)


def test_genesis_reserve_is_held_by_the_exchange():
    from vm.state import State
    from vm.types import Address

    exchange = ElecoinExchange(params={"servers": {GENESIS_SERVER: {"price": 1500, "reserve": 7 * ELC}}})
    state = State({})
    exchange.write_genesis(state)
    assert state.get_balance(exchange.address) == exchange.genesis_reserve == 7 * ELC
    server = Address.from_hex(GENESIS_SERVER)
    assert ElecoinExchange.reserve_at(state, exchange.address, server) == 7 * ELC
    assert ElecoinExchange.price_at(state, exchange.address, server) == 1500
