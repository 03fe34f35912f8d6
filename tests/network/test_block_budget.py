"""A pool full of maximal transactions does not stop the network: every block a
signer seals fits the byte budget its peers enforce, so all three nodes keep
growing one chain that carries every transaction.

Before the byte budget, gas was the only bound: sixty 128 KiB transactions of
zero calldata (4 gas a byte) fit one 60M-gas block of ~7.8 MB, which no peer
could receive (gossip 1 MiB, sync 4 MiB), and every signer packed the same one."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_account import Account
from helpers import DEV_KEYS
from network.conftest import running_localnet, wait_until
from web3.exceptions import TransactionNotFound
from vm.limits import MAX_BLOCK_BYTES, MAX_TRANSACTION_SIZE

pytestmark = pytest.mark.slow

SENDERS = [Account.from_key(key) for key in DEV_KEYS]
TRANSACTIONS_PER_SENDER = 12
CALLDATA = bytes(MAX_TRANSACTION_SIZE - 200)
"""Zero bytes: the cheapest calldata there is, so gas does not limit the block first."""


def maximal_transaction(sender, nonce: int) -> bytes:
    raw = bytes(sender.sign_transaction({
        "to": "0x" + "77" * 20, "value": 1, "data": CALLDATA, "gas": 21_000 + 4 * len(CALLDATA) + 1_000,
        "chainId": 1337, "nonce": nonce, "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}).raw_transaction)
    assert MAX_TRANSACTION_SIZE - 200 < len(raw) <= MAX_TRANSACTION_SIZE
    return raw


@pytest.fixture
def three_nodes(tmp_path):
    """Three signers with 3 s between blocks, so a pool can fill faster than blocks take from it."""
    with running_localnet(tmp_path / "net", "--nodes", "3", "--block-time", "3") as net:
        yield net


def test_a_pool_of_maximal_transactions_keeps_every_node_growing_one_chain(three_nodes):
    net = three_nodes
    signed = [[maximal_transaction(sender, nonce) for nonce in range(TRANSACTIONS_PER_SENDER)] for sender in SENDERS]
    start = max(net.head(i) for i in range(3))

    def submit(position: int) -> list:  # each sender through its own node, so gossip carries them too
        w3 = net.w3(position % 3)
        return [w3.eth.send_raw_transaction(raw) for raw in signed[position]]

    with ThreadPoolExecutor(len(SENDERS)) as senders:
        hashes = [tx_hash for sent in senders.map(submit, range(len(SENDERS))) for tx_hash in sent]
    total_bytes = len(hashes) * MAX_TRANSACTION_SIZE
    assert total_bytes > 7 * MAX_BLOCK_BYTES, "the pool must hold several blocks' worth of bytes"

    for index in range(3):
        w3 = net.w3(index)
        wait_until(lambda w3=w3: all(_mined(w3, tx_hash) for tx_hash in hashes), 240,
                   f"node{index} to hold every maximal transaction")
    # At least as many blocks as the bytes need; then the chain keeps growing on every node.
    top = max(net.head(i) for i in range(3))
    assert top >= start + total_bytes // MAX_BLOCK_BYTES
    wait_until(lambda: min(net.head(i) for i in range(3)) >= top + 3, 60, "every node to keep growing")
    height = min(net.head(i) for i in range(3))
    blocks = [[net.w3(i).eth.get_block(n) for n in range(start, height + 1)] for i in range(3)]
    assert blocks[0] == blocks[1] == blocks[2], "one chain on every node"
    assert sum(len(block.transactions) for block in blocks[0]) == len(hashes)
    assert all(block.size <= MAX_BLOCK_BYTES for block in blocks[0])


def _mined(w3, tx_hash) -> bool:
    try:
        return w3.eth.get_transaction_receipt(tx_hash).status == 1
    except TransactionNotFound:
        return False
