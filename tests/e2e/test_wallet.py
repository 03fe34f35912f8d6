"""A wallet's view of a devnet: web3.py holds the keys, signs locally, sends raw."""
from __future__ import annotations

from helpers import send, wallet
from eth_account import Account
from web3 import Web3
from web3.middleware import SignAndSendRawMiddlewareBuilder


def test_transfer_moves_value_and_pays_the_producer(w3):
    alice, bob = wallet(1), wallet(2)
    before_alice, before_bob = w3.eth.get_balance(alice.address), w3.eth.get_balance(bob.address)
    receipt = send(w3, alice, {"to": bob.address, "value": 10**18, "gas": 21_000,
                               "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9})
    assert receipt.status == 1 and receipt.gasUsed == 21_000
    fee = receipt.gasUsed * receipt.effectiveGasPrice
    assert w3.eth.get_balance(bob.address) == before_bob + 10**18
    assert w3.eth.get_balance(alice.address) == before_alice - 10**18 - fee
    block = w3.eth.get_block(receipt.blockNumber, full_transactions=True)
    assert block.transactions[receipt.transactionIndex]["hash"] == receipt.transactionHash
    assert block.miner == w3.provider.make_request("grid_nodeInfo", [])["result"]["producer"]
    assert block.baseFeePerGas >= 10**9


def test_eip1559_fees_filled_in_by_web3(w3):
    """web3.py picks maxFeePerGas/maxPriorityFeePerGas from eth_feeHistory & co."""
    alice = wallet(1)
    recipient = Account.create().address
    tx = {"from": alice.address, "to": recipient, "value": 12345,
          "nonce": w3.eth.get_transaction_count(alice.address, "pending"), "chainId": w3.eth.chain_id}
    tx["gas"] = w3.eth.estimate_gas(tx)
    filled = w3.eth.account.sign_transaction({**tx, "maxFeePerGas": w3.eth.gas_price * 2,
                                              "maxPriorityFeePerGas": w3.eth.max_priority_fee}, alice.key)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(filled.raw_transaction), timeout=30)
    assert receipt.status == 1 and receipt.type == 2
    assert w3.eth.get_balance(recipient) == 12345
    # and fully automatic: send_transaction with web3's signing middleware fills fees and gas
    wallet_w3 = Web3(Web3.HTTPProvider(w3.provider.endpoint_uri))
    wallet_w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(alice), layer=0)
    tx_hash = wallet_w3.eth.send_transaction({"from": alice.address, "to": recipient, "value": 1})
    auto = wallet_w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    sent = w3.eth.get_transaction(tx_hash)
    assert auto.status == 1 and sent.type == 2 and sent.maxFeePerGas >= sent.maxPriorityFeePerGas > 0
    assert w3.eth.get_balance(recipient) == 12346


def test_registry_view_transaction_and_event(w3, registry):
    admin = wallet(0)
    newcomer = Account.create().address
    assert registry.functions.isRegistered(admin.address).call()
    assert registry.functions.roleOf(wallet(1).address).call() == 1  # prosumer
    assert registry.functions.isRegistered(newcomer).call() is False

    tx = registry.functions.register(newcomer, 5, "meter-17").build_transaction(
        {"from": admin.address, "nonce": w3.eth.get_transaction_count(admin.address, "pending")})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(admin.sign_transaction(tx).raw_transaction), timeout=30)
    assert receipt.status == 1
    assert registry.functions.roleOf(newcomer).call() == 5
    assert registry.functions.nameOf(newcomer).call() == "meter-17"

    events = registry.events.Registered().get_logs(from_block=receipt.blockNumber, to_block=receipt.blockNumber)
    assert [(e.args.account, e.args.role, e.args.name, e.args.by) for e in events] == \
        [(newcomer, 5, "meter-17", admin.address)]
    by_topic = w3.eth.get_logs({"fromBlock": 0, "address": registry.address,
                                "topics": [None, "0x" + "00" * 12 + newcomer[2:].lower()]})
    assert [log.transactionHash for log in by_topic] == [receipt.transactionHash]


def test_native_contract_has_code_and_accounts_do_not(w3, registry):
    assert w3.eth.get_code(registry.address)[:1] == b"\xfe"
    assert w3.eth.get_code(wallet(1).address) == b""


def test_pending_nonce_counts_mempool(w3):
    alice = wallet(3)
    nonce = w3.eth.get_transaction_count(alice.address, "pending")
    hashes = []
    for offset in range(3):
        signed = alice.sign_transaction({"to": wallet(4).address, "value": 1, "gas": 21_000, "nonce": nonce + offset,
                                         "chainId": 1337, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
        hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert w3.eth.get_transaction_count(alice.address, "pending") == nonce + 3
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=30) for h in hashes]
    assert all(r.status == 1 for r in receipts)
    assert w3.eth.get_transaction_count(alice.address) == nonce + 3


def test_chain_views(w3):
    assert w3.eth.chain_id == 1337
    assert w3.net.version == "1337"
    assert w3.is_connected() and w3.eth.syncing is False
    assert w3.client_version.startswith("gridnode/")
    history = w3.eth.fee_history(4, "latest", [25, 75])
    assert len(history.baseFeePerGas) == 5 and len(history.reward) == 4
    latest = w3.eth.get_block("latest")
    assert w3.eth.get_block(latest.hash).number == latest.number
    assert w3.eth.get_block(latest.number).parentHash == w3.eth.get_block(latest.number - 1).hash
    info = w3.provider.make_request("grid_nodeInfo", [])["result"]
    assert info["chainId"] == 1337 and info["consensus"]["engine"] in ("poa", "pow", "poeg", "posoc")
    assert w3.eth.accounts == []


def test_polling_filters_see_new_blocks_and_events(w3, registry):
    block_filter = w3.eth.filter("latest")
    # from the head's number, not "latest": getFilterLogs resolves "latest" when called (as geth
    # does), and under PoW a block may be mined between the receipt and that call
    event_filter = registry.events.Registered.create_filter(from_block=w3.eth.block_number)
    admin, newcomer = wallet(0), Account.create().address
    tx = registry.functions.register(newcomer, 2, "retailer-1").build_transaction(
        {"from": admin.address, "nonce": w3.eth.get_transaction_count(admin.address, "pending")})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(admin.sign_transaction(tx).raw_transaction), timeout=30)
    assert receipt.blockHash in block_filter.get_new_entries()
    assert [e.args.account for e in event_filter.get_new_entries()] == [newcomer]
    assert event_filter.get_new_entries() == []  # each change is reported once
    assert [e.args.account for e in event_filter.get_all_entries()] == [newcomer]
    assert w3.eth.uninstall_filter(block_filter.filter_id)
    missing = w3.provider.make_request("eth_getFilterChanges", [block_filter.filter_id])
    assert missing["error"]["message"] == "filter not found"
