"""Crash safety: SIGKILL a node at random instants while transfers stream in;
each restart on the same data dir must keep every confirmed receipt, the head
it had, and the total supply."""
from __future__ import annotations

import random
import threading
import time

import pytest
from eth_account import Account
from genesis.devnet import dev_accounts
from helpers import DEV_KEYS
from web3.exceptions import TransactionNotFound

GENESIS_SUPPLY = 20 * 10_000 * 10**18


def stream_transfers(url: str, senders, recipients, stop: threading.Event, sent: list) -> None:
    """Send signed transfers round-robin until told to stop or the node goes away."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
    nonces = {s.address: w3.eth.get_transaction_count(s.address, "pending") for s in senders}
    index = 0
    while not stop.is_set():
        sender = senders[index % len(senders)]
        tx = {"to": recipients[index % len(recipients)], "value": 10**15 + index, "gas": 21_000, "chainId": 1337,
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9, "nonce": nonces[sender.address]}
        try:
            sent.append(w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction))
        except Exception:  # the node was killed under us: that is the point of the test
            return
        nonces[sender.address] += 1
        index += 1
        time.sleep(0.005)


@pytest.mark.slow
@pytest.mark.few_nodes
def test_sigkill_at_random_instants_loses_nothing(node_factory, tmp_path):
    datadir = tmp_path / "crashy"
    rng = random.Random(20261121)
    senders = [Account.from_key(key) for key in DEV_KEYS[1:]]
    recipients = [Account.create().address for _ in range(7)]
    confirmed: dict[bytes, tuple[int, bytes, int]] = {}
    node = node_factory(datadir)
    producer = node.web3().provider.make_request("grid_nodeInfo", [])["result"]["producer"]

    for cycle in range(3):
        w3 = node.web3()
        stop, sent = threading.Event(), []
        streamer = threading.Thread(target=stream_transfers, args=(node.url, senders, recipients, stop, sent))
        streamer.start()
        time.sleep(rng.uniform(1.5, 3.5))
        for tx_hash in list(sent):
            receipt = _receipt_or_none(w3, tx_hash)
            if receipt is not None:
                confirmed[bytes(tx_hash)] = (receipt.blockNumber, bytes(receipt.blockHash), receipt.status)
        head = w3.eth.get_block("latest")
        node.kill()  # SIGKILL while the stream and block production are running
        stop.set()
        streamer.join()

        node = node_factory(datadir)
        w3 = node.web3()
        assert w3.eth.get_block(head.number).hash == head.hash, f"cycle {cycle}: head block changed"
        assert w3.eth.block_number >= head.number
        for tx_hash, (number, block_hash, status) in confirmed.items():
            receipt = w3.eth.get_transaction_receipt(tx_hash)
            assert (receipt.blockNumber, bytes(receipt.blockHash), receipt.status) == (number, block_hash, status)
        holders = [a.address for a in dev_accounts()] + recipients + [producer]
        assert sum(w3.eth.get_balance(a) for a in set(holders)) == GENESIS_SUPPLY, f"cycle {cycle}: supply changed"
    assert len(confirmed) > 50, "too few transfers confirmed to mean anything"


def _receipt_or_none(w3, tx_hash):
    try:
        return w3.eth.get_transaction_receipt(tx_hash)
    except TransactionNotFound:
        return None



def test_accepted_transactions_survive_sigkill_before_they_are_mined(node_factory, tmp_path):
    datadir = tmp_path / "journal"
    node = node_factory(datadir)
    w3 = node.web3()
    alice = Account.from_key(DEV_KEYS[2])
    nonce = w3.eth.get_transaction_count(alice.address, "pending")

    def signed(n: int) -> bytes:
        return alice.sign_transaction({"to": Account.create().address, "value": 1, "gas": 21_000, "chainId": 1337,
                                       "nonce": n, "maxFeePerGas": 10**10,
                                       "maxPriorityFeePerGas": 10**9}).raw_transaction

    waiting = w3.eth.send_raw_transaction(signed(nonce + 1))  # behind a nonce gap: it can only wait
    node.kill()
    node = node_factory(datadir)
    w3 = node.web3()
    assert w3.eth.get_transaction(waiting).blockHash is None, "back in the mempool after the crash"
    assert w3.eth.get_transaction_count(alice.address, "pending") == nonce  # the gap is still there
    gap = w3.eth.send_raw_transaction(signed(nonce))
    for tx_hash in (gap, waiting):
        assert w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30).status == 1
