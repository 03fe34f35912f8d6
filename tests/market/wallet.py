"""What the market tests do as a wallet: sign locally, send raw, wait for receipts, decode
events, and see revert reasons the way eth_call and eth_estimateGas report them."""
from __future__ import annotations

import re

import pytest
from eth_account import Account
from genesis.devnet import DEVNET_KEYS, dev_accounts
from web3.exceptions import ContractLogicError

ACCOUNTS = [Account.from_key(a.private_key) for a in dev_accounts(DEVNET_KEYS)]
"""The test mnemonic's accounts: #0 admin, #1..#19 prosumers, #20..#38 their meter oracles,
#39 the devnet's edge server."""


def oracle_of(prosumer_index: int):
    return ACCOUNTS[19 + prosumer_index]


def contracts(w3) -> dict:
    """name -> web3 contract, for every placed contract `grid_contracts` lists; an instance-only
    kind (address null) maps to its contract factory: call it with `address=`."""
    listed = w3.provider.make_request("grid_contracts", [])["result"]
    return {name: w3.eth.contract(address=entry["address"], abi=entry["abi"]) if entry["address"]
            else w3.eth.contract(abi=entry["abi"]) for name, entry in listed.items()}


def submit(w3, account, call=None, *, value: int = 0, gas: int | None = None, to: str | None = None) -> bytes:
    """Sign locally and send raw, as a wallet does; `call` is a contract function, or None for a
    plain transfer to `to`. Gas is estimated unless given (give it when the transaction depends
    on another one still in the pool)."""
    base = {"from": account.address, "chainId": w3.eth.chain_id, "value": value,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"), **({"gas": gas} if gas else {})}
    if call is None:
        tx = {**base, "to": to, "gas": gas or 21_000, "maxFeePerGas": 2 * w3.eth.gas_price,
              "maxPriorityFeePerGas": w3.eth.max_priority_fee}
        del tx["from"]
    else:
        tx = call.build_transaction(base)
    return w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)


def mined(w3, *hashes: bytes) -> list:
    return [w3.eth.wait_for_transaction_receipt(h, timeout=30, poll_latency=0.1) for h in hashes]


def transact(w3, account, call, *, value: int = 0, gas: int | None = None):
    (receipt,) = mined(w3, submit(w3, account, call, value=value, gas=gas))
    return receipt


def fee_of(receipt) -> int:
    return receipt.gasUsed * receipt.effectiveGasPrice


def assert_reverts(account, call, reason: str, value: int = 0) -> None:
    """What a wallet sees: eth_call and eth_estimateGas both refuse with the reason."""
    with pytest.raises(ContractLogicError, match=re.escape(reason)):
        call.call({"from": account.address, "value": value})
    with pytest.raises(ContractLogicError, match=re.escape(reason)):
        call.estimate_gas({"from": account.address, "value": value})


def events(contract, name: str, receipt) -> list[tuple]:
    """The `name` events this contract logged in the transaction, decoded, in order."""
    event = getattr(contract.events, name)()
    return [tuple(event.process_log(log).args.values()) for log in receipt.logs
            if log.address == contract.address and "0x" + bytes(log.topics[0]).hex() == event.topic]
