"""eth_estimateGas for a call that passes gas to another contract: the gas it uses is not
enough as a limit (each call keeps 1/64 back), so the node searches for the lowest limit
that succeeds, as geth does, and a wallet that sends with the estimate gets status 1."""
from __future__ import annotations

import pytest
from wallet import ACCOUNTS, transact
from web3.exceptions import Web3RPCError

BUYER, SERVER = ACCOUNTS[4], ACCOUNTS[39]


def test_a_purchase_sent_with_exactly_the_estimate_succeeds(w3, market):
    exchange, fiat = market["ElecoinExchange"], market["FiatToken"]
    amount = 2 * 10**18
    price = exchange.functions.quote(SERVER.address, amount).call()
    assert transact(w3, BUYER, fiat.functions.approve(exchange.address, price)).status == 1
    buy = exchange.functions.buyToken(SERVER.address, amount)
    estimate = buy.estimate_gas({"from": BUYER.address})
    # What the purchase uses is too little as a limit: the exchange's calls keep 1/64 back.
    used = w3.eth.estimate_gas({"from": BUYER.address, "to": exchange.address,
                                "data": buy._encode_transaction_data(), "gas": estimate})
    assert used == estimate
    with pytest.raises(Web3RPCError, match="out of gas"):
        buy.call({"from": BUYER.address, "gas": estimate * 97 // 100})
    receipt = transact(w3, BUYER, buy, gas=estimate)
    assert receipt.status == 1
    assert receipt.gasUsed < estimate <= receipt.gasUsed * 105 // 100  # 1/64 per call level, 1.5 % search
