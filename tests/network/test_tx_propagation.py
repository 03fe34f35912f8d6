"""A transaction sent to a node that cannot reach a producer at that moment is
not lost: the node gossips it again once it has peers."""
from __future__ import annotations

import pytest
from eth_account import Account
from helpers import ADMIN_API, DEV_KEYS
from network.conftest import make_network, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.few_nodes]  # two nodes


def test_transaction_heard_by_a_lonely_follower_still_gets_mined(tmp_path, node_factory):
    (producer_dir, follower_dir), _ = make_network(tmp_path, ["producer", "follower"], 0)
    producer_dir.signer_key_file.rename(tmp_path / "signer.key")  # not yet: the producer starts later
    follower = node_factory(follower_dir.root, *ADMIN_API)
    w3 = follower.web3()
    alice = Account.from_key(DEV_KEYS[1])
    tx = {"to": Account.create().address, "value": 7, "gas": 21_000, "chainId": 1337, "nonce": 0,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    tx_hash = w3.eth.send_raw_transaction(alice.sign_transaction(tx).raw_transaction)  # gossiped to nobody
    (tmp_path / "signer.key").rename(producer_dir.signer_key_file)
    producer = node_factory(producer_dir.root, *ADMIN_API)
    address = producer.web3().provider.make_request("admin_nodeInfo", [])["result"]["listenAddrs"][0]
    assert w3.provider.make_request("admin_addPeer", [address])["result"]
    wait_until(lambda: w3.net.peer_count == 1, 30, "the follower to reach the producer")
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=45)
    assert receipt.status == 1
    assert producer.web3().eth.get_transaction_receipt(tx_hash).blockHash == receipt.blockHash
