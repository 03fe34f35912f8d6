"""A real `gridnode localnet` for the multi-node tests: N node processes on loopback."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from consensus.engine import Signer
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from helpers import DEV_KEYS
from node.chain import Chain
from node.datadir import DataDir, write_secret
from node.mempool import Mempool
from node.p2p.identity import load_or_create_identity
from node.producer import produce_block
from node.store import Store
from vm.transactions import decode_transaction
from web3 import Web3


class Localnet:
    """Drive a running localnet: its nodes' RPC, and kill / stop / restart of single nodes."""

    def __init__(self, directory: Path, process: subprocess.Popen, description: dict) -> None:
        self.directory = directory
        self.process = process
        self.nodes = description["nodes"]
        self.restarted: dict[int, subprocess.Popen] = {}

    def w3(self, index: int) -> Web3:
        return Web3(Web3.HTTPProvider(self.nodes[index]["rpc"], request_kwargs={"timeout": 10}))

    def rpc(self, index: int, method: str, *params):
        reply = self.w3(index).provider.make_request(method, list(params))
        if "error" in reply:
            raise RuntimeError(reply["error"]["message"])
        return reply["result"]

    def pid(self, index: int) -> int:
        return self.restarted[index].pid if index in self.restarted else self.nodes[index]["pid"]

    def signal(self, index: int, sig: int) -> None:
        os.kill(self.pid(index), sig)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if index in self.restarted:
                if self.restarted[index].poll() is not None:
                    return
            elif not _alive(self.nodes[index]["pid"]):
                return
            time.sleep(0.05)
        raise TimeoutError(f"node{index} did not exit")

    def restart(self, index: int) -> None:
        log = open(self.nodes[index]["log"], "a")
        self.restarted[index] = subprocess.Popen(self.nodes[index]["command"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self._answers(index), 30, f"node{index} RPC after restart")

    def _answers(self, index: int) -> bool:
        try:
            self.w3(index).eth.block_number
            return True
        except Exception:  # not up yet
            return False

    def head(self, index: int) -> int:
        return self.w3(index).eth.block_number

    def wait_for_peers(self, indices, count: int, timeout: float = 60) -> None:
        for index in indices:
            wait_until(lambda i=index: int(self.rpc(i, "net_peerCount"), 16) >= count, timeout,
                       f"node{index} to have {count} peers")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of the localnet process counts as dead
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def wait_until(condition, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def running_localnet(directory: Path, *args: str):
    """Run `gridnode localnet --dir DIRECTORY ARGS…` until the block ends; every node peered with all."""
    process = subprocess.Popen([sys.executable, "-m", "cli.main", "localnet", "--dir", str(directory), *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    description_file = directory / "localnet.json"
    wait_until(description_file.exists, 60, "localnet.json")
    net = Localnet(directory, process, json.loads(description_file.read_text()))
    count = len(net.nodes)
    try:
        wait_until(lambda: all(net._answers(i) for i in range(count)), 60, "every node's RPC")
        net.wait_for_peers(range(count), count - 1)
        yield net
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        for restarted in net.restarted.values():
            if restarted.poll() is None:
                restarted.terminate()
                restarted.wait(timeout=30)
        for node in net.nodes:
            if _alive(node["pid"]):
                os.kill(node["pid"], signal.SIGKILL)


@pytest.fixture
def localnet(tmp_path):
    """A 4-signer PoA localnet."""
    with running_localnet(tmp_path / "net", "--nodes", "4") as net:
        yield net


SIGNER = Signer(bytes(range(1, 33)))


def make_network(tmp_path, names: list[str], history: int):
    """Data dirs sharing a one-signer genesis that admits `names`' node keys; the first
    gets the signer key and `history` blocks already made, with timestamps in the past."""
    dirs = [DataDir(tmp_path / name) for name in names]
    peer_ids = [load_or_create_identity(d.root).peer_id for d in dirs]
    document = devnet_genesis_document(SIGNER.address)
    document.update(name="sync-test", nodes=peer_ids, timestamp=int(time.time()) - history - 600)
    genesis = Genesis.from_json(document)
    for datadir in dirs:
        store = Store(str(datadir.chaindata))
        Chain(store, genesis, genesis.create_engine())
        store.close()
    write_secret(dirs[0].signer_key_file, SIGNER.private_key.hex())
    store = Store(str(dirs[0].chaindata))
    chain = Chain(store, genesis, genesis.create_engine())
    alice = Account.from_key(DEV_KEYS[1])
    for number in range(history):
        mempool = Mempool(chain.chain_id, chain.genesis.gas_limit)
        if number % 50 == 0:  # some state to carry along, not only empty blocks
            tx = decode_transaction(bytes(alice.sign_transaction({
                "to": "0x" + "77" * 20, "value": number + 1, "gas": 21_000, "chainId": 1337, "nonce": number // 50,
                "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}).raw_transaction))
            mempool.add(tx, chain.state(), chain.environment(chain.head, 0, SIGNER.address).base_fee)
        produce_block(chain, mempool, SIGNER, chain.head.timestamp + 1)
    store.close()
    return dirs, genesis
