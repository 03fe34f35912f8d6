"""Four PoA signers in separate processes on loopback: one chain, through crashes and stopped
signers. (A 2 | 2 partition with load on both sides is testnets/poa.toml's, run by
tests/cli/test_testnet.py with the harness's invariant checks.)"""
from __future__ import annotations

import signal
import time

import pytest
from eth_account import Account
from helpers import DEV_KEYS
from network.conftest import wait_until

pytestmark = pytest.mark.slow


def transfer(w3, key: str, to: str, value: int, nonce: int | None = None):
    account = Account.from_key(key)
    tx = {"to": to, "value": value, "gas": 21_000, "chainId": 1337, "maxFeePerGas": 10**10,
          "maxPriorityFeePerGas": 10**9,
          "nonce": w3.eth.get_transaction_count(account.address, "pending") if nonce is None else nonce}
    return w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)


def same_chain(net, indices, up_to: int) -> bool:
    hashes = [[net.w3(i).eth.get_block(n).hash for n in range(up_to + 1)] for i in indices]
    return all(h == hashes[0] for h in hashes)


def common_height(net, indices) -> int:
    return min(net.head(i) for i in indices)


def test_transaction_on_one_node_is_identical_everywhere(localnet):
    receipt = localnet.w3(1).eth.wait_for_transaction_receipt(
        transfer(localnet.w3(1), DEV_KEYS[1], Account.create().address, 10**18), timeout=30)
    assert receipt.status == 1
    for index in (0, 2, 3):
        w3 = localnet.w3(index)
        wait_until(lambda: w3.eth.block_number >= receipt.blockNumber, 30, f"node{index} to reach the block")
        assert dict(w3.eth.get_transaction_receipt(receipt.transactionHash)) == dict(receipt)
    wait_until(lambda: common_height(localnet, range(4)) >= 8, 30, "8 blocks on every node")
    height = common_height(localnet, range(4))
    assert same_chain(localnet, range(4), height)
    producers = [localnet.w3(0).eth.get_block(n).miner for n in range(1, height + 1)]
    assert len(set(producers)) >= 3, "signers take turns"
    assert all(producers[i] not in producers[i + 1:i + 3] for i in range(len(producers) - 2)), \
        "no signer seals twice within ⌊4/2⌋+1 blocks"


def test_killed_signer_is_survived_and_rejoins(localnet):
    localnet.signal(3, signal.SIGKILL)
    start = localnet.head(0)
    wait_until(lambda: localnet.head(0) >= start + 6, 40, "the 3 remaining signers to keep producing")
    localnet.restart(3)
    wait_until(lambda: localnet.head(3) >= localnet.head(0) - 1, 60, "node3 to catch up")
    signer3 = localnet.rpc(3, "grid_nodeInfo")["producer"]
    rejoined_at = localnet.head(0)
    wait_until(lambda: any(localnet.w3(0).eth.get_block(n).miner == signer3
                           for n in range(rejoined_at, localnet.head(0) + 1)), 40, "node3 to sign again")
    height = common_height(localnet, range(4))
    assert same_chain(localnet, range(4), height)


def test_two_of_four_stopped_halts_without_forks_then_resumes(localnet):
    localnet.signal(2, signal.SIGTERM)
    localnet.signal(3, signal.SIGTERM)
    time.sleep(4)
    stalled = localnet.head(0)
    time.sleep(5)
    assert localnet.head(0) <= stalled + 1 and localnet.head(1) <= stalled + 1, "2 of 4 signers must not produce"
    assert same_chain(localnet, (0, 1), common_height(localnet, (0, 1)))
    localnet.restart(2)
    localnet.restart(3)
    wait_until(lambda: localnet.head(0) >= stalled + 5, 60, "production to resume")
    height = common_height(localnet, range(4))
    assert same_chain(localnet, range(4), height)
