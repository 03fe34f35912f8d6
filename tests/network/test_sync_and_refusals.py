"""A node thousands of blocks behind catches up over the sync protocol, and the
network refuses strangers and forged blocks without harm to the honest chain."""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
from consensus.engine import Signer
from helpers import ADMIN_API, NodeProcess
from network.conftest import SIGNER, make_network, wait_until
from node.p2p.config import P2PConfig
from node.p2p.identity import load_or_create_identity
from node.p2p.port import ChainStatus, ImportResult, Outcome
from node.p2p.service import P2PService
from vm.blocks import Block, Header, combine_blooms
from vm.gas import next_base_fee
from vm.merkle import list_root
from vm.types import Address, Hash32

pytestmark = pytest.mark.slow

HISTORY = 5_000


@pytest.mark.few_nodes
def test_late_node_syncs_thousands_of_blocks_and_reports_progress(tmp_path):
    (ahead, late), _ = make_network(tmp_path, ["ahead", "late"], HISTORY)
    producer = NodeProcess(ahead.root, ADMIN_API).start()
    follower = None
    try:
        w3_ahead = producer.web3()
        assert w3_ahead.eth.block_number >= HISTORY
        address = w3_ahead.provider.make_request("admin_nodeInfo", [])["result"]["listenAddrs"][0]
        started = time.monotonic()
        follower = NodeProcess(late.root, ("--bootnode", address)).start()
        w3_late = follower.web3()
        progress = wait_until(lambda: w3_late.eth.syncing, 30, "eth_syncing to report progress", interval=0.05)
        assert progress["highestBlock"] >= HISTORY and progress["currentBlock"] <= progress["highestBlock"]
        wait_until(lambda: w3_late.eth.block_number >= HISTORY, 240, "the late node to sync")
        seconds = time.monotonic() - started
        print(f"\nsynced {HISTORY} blocks in {seconds:.1f} s = {HISTORY / seconds:.0f} blocks/s")
        wait_until(lambda: w3_late.eth.syncing is False, 30, "eth_syncing to turn false")
        for number in (1, 50, HISTORY // 2, HISTORY):
            assert w3_late.eth.get_block(number).hash == w3_ahead.eth.get_block(number).hash
        assert w3_late.eth.get_balance("0x" + "77" * 20) == w3_ahead.eth.get_balance("0x" + "77" * 20, HISTORY)
    finally:
        for node in (producer, follower):
            if node is not None and node.alive():
                node.stop()


def test_strangers_are_refused(tmp_path, node_factory):
    (honest, admitted, forked), genesis = make_network(tmp_path, ["honest", "admitted", "forked"], 0)
    node = node_factory(honest.root, *ADMIN_API)
    address = node.web3().provider.make_request("admin_nodeInfo", [])["result"]["listenAddrs"][0]
    friend = node_factory(admitted.root, "--bootnode", address)
    wait_until(lambda: friend.web3().net.peer_count == 1, 30, "the admitted node to peer")

    other = dict(genesis.source, name="another-chain")  # admitted key, same chain id, different genesis
    shutil.rmtree(forked.chaindata)
    (tmp_path / "other.json").write_text(json.dumps(other))
    stranger_dir = tmp_path / "stranger"  # the right genesis, but a key nobody admitted
    (tmp_path / "right.json").write_text(genesis.to_json())
    for genesis_file, datadir in (("other.json", forked.root), ("right.json", stranger_dir)):
        init = subprocess.run([sys.executable, "-m", "cli.main", "init", "--genesis", str(tmp_path / genesis_file),
                               "--datadir", str(datadir)], capture_output=True, text=True)
        assert init.returncode == 0, init.stderr
    other_chain = node_factory(forked.root, "--bootnode", address)
    stranger = node_factory(stranger_dir, "--bootnode", address)
    time.sleep(5)
    assert node.web3().net.peer_count == 1, "only the admitted node of the same chain stays"
    assert other_chain.web3().net.peer_count == 0 and stranger.web3().net.peer_count == 0
    peers = node.web3().provider.make_request("admin_peers", [])["result"]
    assert [p["id"] for p in peers] == [load_or_create_identity(admitted.root).peer_id]
    assert "node key not admitted" in node.output  # the stranger thinks us admitted; only we refuse
    assert "genesis 0x" in node.output + other_chain.output  # either side may notice the other chain first


class ByzantinePort:
    """The forger's side of the port: it claims the honest chain's genesis and
    nothing else, so all it does on the network is gossip what the test publishes."""

    def __init__(self, status: ChainStatus) -> None:
        self._status = status

    def status(self) -> ChainStatus:
        return self._status

    def import_block(self, encoded_block: bytes, durable: bool = True) -> ImportResult:
        return ImportResult(Outcome.KNOWN)

    def add_transaction(self, raw_transaction: bytes) -> ImportResult:
        return ImportResult(Outcome.KNOWN)

    def blocks(self, start: int, count: int) -> list[bytes]:
        return []

    def canonical_hash(self, number: int) -> bytes | None:
        return None

    def is_admitted(self, peer_id: str) -> bool:
        return True


def header_from_rpc(block) -> Header:
    return Header(Hash32(block.parentHash), block.number, block.timestamp, Address.from_hex(block.miner),
                  Hash32(block.stateRoot), Hash32(block.transactionsRoot), Hash32(block.receiptsRoot),
                  bytes(block.logsBloom), block.gasLimit, block.gasUsed, block.baseFeePerGas, block.difficulty,
                  bytes(block.extraData), bytes.fromhex(block["seal"][2:]))


def test_forged_gossip_blocks_are_refused_and_the_forger_dropped(tmp_path, node_factory):
    (honest, byzantine), genesis = make_network(tmp_path, ["honest", "byzantine"], 3)
    honest.signer_key_file.unlink()  # a follower: its head stays put, so forged children would be its head
    node = node_factory(honest.root, *ADMIN_API)
    w3 = node.web3()
    head = w3.eth.get_block("latest")
    parent = header_from_rpc(head)
    assert parent.hash == bytes(head.hash)
    child = Header(parent.hash, parent.number + 1, parent.timestamp + 1, SIGNER.address, parent.state_root,
                   list_root([]), list_root([]), combine_blooms([]), parent.gas_limit, 0,
                   next_base_fee(parent.gas_limit, parent.gas_used, parent.base_fee, genesis.min_base_fee), 2)
    intruder = Signer(b"\x66" * 32)
    forged = {
        "bad seal": child.with_seal(b"\x01" * 65),
        "unauthorized signer": replace(child, producer=intruder.address).with_seal(
            intruder.sign(replace(child, producer=intruder.address).seal_hash)),
        "wrong turn weight": replace(child, difficulty=1).with_seal(SIGNER.sign(replace(child, difficulty=1).seal_hash)),
        "bad state root": replace(child, state_root=Hash32(b"\x13" * 32)).with_seal(
            SIGNER.sign(replace(child, state_root=Hash32(b"\x13" * 32)).seal_hash)),
    }
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    status = ChainStatus(1337, bytes.fromhex(w3.provider.make_request("grid_nodeInfo", [])["result"]["genesisHash"][2:]),
                         0, genesis.block(b"\x00" * 32).hash, 0)
    address = w3.provider.make_request("admin_nodeInfo", [])["result"]["listenAddrs"][0]
    forger = P2PService(P2PConfig(datadir=byzantine.root, chain_id=1337, genesis_hash=status.genesis_hash,
                                  listen=("/ip4/127.0.0.1/tcp/0",), bootnodes=(address,)), ByzantinePort(status), loop)
    forger.start()
    try:
        wait_until(lambda: w3.net.peer_count == 1, 30, "the forger to be admitted as a peer")
        # Gossip reaches the honest node only once the forger has learnt its subscriptions,
        # which may be after the connection counts; so the forger keeps sending its four
        # forgeries (a known-bad block is still penalised) until it is banned.
        deadline = time.monotonic() + 30
        while w3.net.peer_count and time.monotonic() < deadline:
            for header in forged.values():
                forger.publish_block(Block(header, ()).encode())
                time.sleep(0.3)
        assert w3.net.peer_count == 0, "the forger was not disconnected within 30 s"
    finally:
        forger.stop()
        loop.call_soon_threadsafe(loop.stop)
    assert w3.eth.get_block("latest").hash == head.hash
    for header in forged.values():
        assert w3.provider.make_request("eth_getBlockByHash", ["0x" + header.hash.hex(), False])["result"] is None
    assert "disconnecting peer " + forger.peer_id in node.output
