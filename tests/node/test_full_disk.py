"""A full disk and a read-only data dir, on a small disk of the node's own (a tmpfs, as root):
the node stops with a readable error instead of a traceback, loses nothing it had committed or
acknowledged, and starts again where its last commit left it once there is room. A transaction
the journal cannot keep is refused, not half accepted. Skipped with the reason without root."""
from __future__ import annotations

import os
import subprocess
import time

import pytest
from cli.testnet.disk import fill, free, why_not
from eth_account import Account
from helpers import NodeProcess, send, wallet
from node.intake import TransactionIntake
from node.mempool import Mempool
from node.txjournal import TxJournal
from consensus.engine import Signer
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from node.chain import Chain
from node.store import Store
from vm.transition import TransactionRejected


@pytest.fixture
def disk(tmp_path):
    reason = why_not()
    if reason:
        pytest.skip(reason)
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def wait_exit(node: NodeProcess, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    while node.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not node.alive(), "the node kept running on a full disk"
    return node.process.returncode


def test_a_full_disk_stops_the_node_with_a_clear_error_and_it_resumes_from_its_last_commit(disk):
    node = NodeProcess(disk / "node").start()
    w3 = node.web3()
    receipt = send(w3, wallet(1), {"to": Account.create().address, "value": 7, "gas": 21_000,
                                   "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9})
    taken = fill(disk)
    assert taken > 0 and os.statvfs(disk).f_bavail == 0
    assert wait_exit(node, 30) == 1  # the next block's write fails
    said = node.output
    assert "the node stopped: the chain store could not write" in said and "No space left on device" in said
    assert "Traceback" not in said
    assert "start it again: it resumes from block" in said.splitlines()[-1]
    again = NodeProcess(disk / "node")
    with pytest.raises(RuntimeError, match="cannot open the chain store"):  # still full: refused at open
        again.start()
    free(disk)
    again.start()
    w3 = again.web3()
    head = w3.eth.block_number
    assert head >= receipt.blockNumber
    assert w3.eth.get_transaction_receipt(receipt.transactionHash).blockHash == receipt.blockHash
    for number in range(head + 1):  # every committed block whole, its parent link intact
        block = w3.eth.get_block(number)
        assert number == 0 or block.parentHash == w3.eth.get_block(number - 1).hash
    deadline = time.monotonic() + 20
    while w3.eth.block_number <= head:  # and production goes on
        assert time.monotonic() < deadline, "no block after the restart"
        time.sleep(0.2)
    assert again.stop() == 0


def test_a_read_only_data_dir_is_refused_at_start_with_the_reason(disk, tmp_path):
    node = NodeProcess(disk / "node").start()
    assert node.stop() == 0
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    again = NodeProcess(disk / "node")
    again.log_path = tmp_path / "again.log"  # beside the read-only disk
    with pytest.raises(RuntimeError, match="cannot open the chain store .*Read-only file system"):
        again.start()


def test_an_append_the_disk_refuses_leaves_the_journal_as_it_was(disk):
    journal = TxJournal(disk / "txpool.journal")
    journal.append(b"kept")
    fill(disk)
    with pytest.raises(OSError):
        journal.append(b"x" * 10_000)
    with pytest.raises(OSError):
        journal.rewrite([b"kept", b"more"])  # aside then rename: the old journal stays
    free(disk)
    journal.append(b"after")
    journal.close()
    assert TxJournal(disk / "txpool.journal").load() == [b"kept", b"after"]
    assert sorted(p.name for p in disk.iterdir()) == ["txpool.journal"]  # the failed rewrite's aside file is gone


class FullJournal(TxJournal):
    def append(self, raw: bytes) -> None:
        raise OSError(28, "No space left on device")


def test_a_transaction_the_journal_cannot_keep_is_refused_and_not_pooled(tmp_path):
    genesis = Genesis.from_json(devnet_genesis_document(Signer(b"\x07" * 32).address))
    chain = Chain(Store(str(tmp_path / "chain")), genesis, genesis.create_engine())
    intake = TransactionIntake(chain, Mempool(chain.chain_id, chain.genesis.gas_limit))
    intake.journal = FullJournal(tmp_path / "journal")
    sender = wallet(1)
    raw = bytes(sender.sign_transaction({"to": "0x" + "22" * 20, "value": 1, "gas": 21_000, "chainId": 1337, "nonce": 0,
                                         "maxFeePerGas": 5 * 10**9, "maxPriorityFeePerGas": 10**9}).raw_transaction)
    with pytest.raises(TransactionRejected, match="could not keep the transaction .*No space left"):
        intake.submit(raw)
    assert len(intake.mempool) == 0
    intake.journal = TxJournal(tmp_path / "journal")
    tx, is_new = intake.submit(raw)  # once there is room, the same transaction is taken
    assert is_new and intake.mempool.get(tx.hash) is not None
    chain.store.close()
