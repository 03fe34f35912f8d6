"""The 4-signer network with every node in its own network namespace and
address, and the 2 | 2 partition made with nftables rules, as on real hosts.

Needs root, `ip netns` and `nft`; skipped with the reason otherwise."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest
from cli.localnet import prepare_localnet, stop_processes
from eth_account import Account
from helpers import DEV_KEYS
from network.conftest import wait_until
from node.p2p.identity import load_or_create_identity
from web3 import Web3

pytestmark = pytest.mark.slow

PREFIX = "gnt"
SUBNET = "10.231.7"
HUB = f"{SUBNET}.254"


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"needs the {tool} command"
    probe = subprocess.run(["ip", "netns", "add", f"{PREFIX}-probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"ip netns unavailable: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", f"{PREFIX}-probe"], check=False)
    return None


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True)


def in_ns(index: int, *args: str) -> None:
    sh("ip", "netns", "exec", f"{PREFIX}{index}", *args)


@pytest.fixture
def hosts(tmp_path):
    reason = _why_not()
    if reason:
        print(f"\nSKIP netns test: {reason}")
        pytest.skip(reason)
    bridge = f"{PREFIX}br"
    sh("ip", "link", "add", bridge, "type", "bridge")
    sh("ip", "addr", "add", f"{HUB}/24", "dev", bridge)
    sh("ip", "link", "set", bridge, "up")
    processes = []
    try:
        for index in range(4):
            sh("ip", "netns", "add", f"{PREFIX}{index}")
            sh("ip", "link", "add", f"{PREFIX}v{index}", "type", "veth", "peer", "name", "eth0",
               "netns", f"{PREFIX}{index}")
            sh("ip", "link", "set", f"{PREFIX}v{index}", "master", bridge, "up")
            in_ns(index, "ip", "addr", "add", f"{SUBNET}.{index + 1}/24", "dev", "eth0")
            in_ns(index, "ip", "link", "set", "eth0", "up")
            in_ns(index, "ip", "link", "set", "lo", "up")
        datadirs = prepare_localnet(tmp_path / "hosts", 4, 1)
        peer_ids = [load_or_create_identity(d.root).peer_id for d in datadirs]
        addresses = [f"/ip4/{SUBNET}.{i + 1}/tcp/30303/p2p/{peer_ids[i]}" for i in range(4)]
        for index, datadir in enumerate(datadirs):
            command = ["ip", "netns", "exec", f"{PREFIX}{index}", sys.executable, "-m", "cli.main", "start",
                       "--datadir", str(datadir.root), "--rpc-host", f"{SUBNET}.{index + 1}", "--rpc-port", "8545",
                       "--listen", f"/ip4/{SUBNET}.{index + 1}/tcp/30303"]
            for other, address in enumerate(addresses):
                if other != index:
                    command += ["--bootnode", address]
            log = open(datadir.root / "node.log", "w")
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
        clients = [Web3(Web3.HTTPProvider(f"http://{SUBNET}.{i + 1}:8545", request_kwargs={"timeout": 10}))
                   for i in range(4)]
        wait_until(lambda: all(_answers(w) for w in clients), 60, "every namespaced node's RPC")
        wait_until(lambda: all(w.net.peer_count == 3 for w in clients), 90, "full mesh across namespaces")
        yield clients
    finally:
        stop_processes(processes, timeout=30)
        for index in range(4):
            subprocess.run(["ip", "netns", "del", f"{PREFIX}{index}"], check=False)
        subprocess.run(["ip", "link", "del", bridge], check=False)


def _answers(w3: Web3) -> bool:
    try:
        return w3.eth.block_number >= 0
    except Exception:  # not listening yet
        return False


def partition(index: int, others: list[int]) -> None:
    """Drop everything between this host and `others`, both ways, with nftables."""
    blocked = ", ".join(f"{SUBNET}.{o + 1}" for o in others)
    in_ns(index, "nft", "add", "table", "inet", "partition")
    in_ns(index, "nft", "add", "chain", "inet", "partition", "in", "{ type filter hook input priority 0; }")
    in_ns(index, "nft", "add", "chain", "inet", "partition", "out", "{ type filter hook output priority 0; }")
    in_ns(index, "nft", "add", "rule", "inet", "partition", "in", "ip", "saddr", f"{{ {blocked} }}", "drop")
    in_ns(index, "nft", "add", "rule", "inet", "partition", "out", "ip", "daddr", f"{{ {blocked} }}", "drop")


def heal(index: int) -> None:
    in_ns(index, "nft", "delete", "table", "inet", "partition")


def test_namespaced_network_agrees_and_survives_an_nftables_partition(hosts):
    w3 = hosts
    heights = [w.eth.block_number for w in w3]
    wait_until(lambda: min(w.eth.block_number for w in w3) >= max(heights) + 3, 30, "blocks on every host")
    for index, others in ((0, [2, 3]), (1, [2, 3]), (2, [0, 1]), (3, [0, 1])):
        partition(index, others)
    sent = []
    for sender, (client, key) in enumerate(zip((w3[0], w3[2], w3[1], w3[3]), DEV_KEYS[1:5], strict=True)):
        account = Account.from_key(key)
        tx = {"to": Account.create().address, "value": sender + 1, "gas": 21_000, "chainId": 1337,
              "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9,
              "nonce": client.eth.get_transaction_count(account.address, "pending")}
        sent.append(client.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
    time.sleep(8)
    for index in range(4):
        heal(index)
    wait_until(lambda: all(w.net.peer_count == 3 for w in w3), 120, "the mesh to re-form after healing")
    for tx_hash in sent:
        for client in w3:
            assert client.eth.wait_for_transaction_receipt(tx_hash, timeout=90).status == 1
    height = min(w.eth.block_number for w in w3)
    for number in range(1, height + 1):
        assert len({bytes(w.eth.get_block(number).hash) for w in w3}) == 1, f"hosts disagree at block {number}"
