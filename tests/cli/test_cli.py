"""The `gridnode` command as an operator uses it: help, init, accounts, tx send, readable errors."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys

import pytest
from helpers import DEV_KEYS


def gridnode(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True,
                          input=stdin, timeout=timeout)


@pytest.mark.parametrize("command", [[], ["start"], ["init"], ["account"], ["account", "new"], ["account", "list"],
                                     ["account", "import"], ["tx"], ["tx", "send"], ["sim"], ["keys"],
                                     ["localnet"], ["market"], ["testnet"], ["testnet", "run"], ["testnet", "soak"]])
def test_help_everywhere(command):
    result = gridnode(*command, "--help")
    assert result.returncode == 0 and "usage: gridnode" in result.stdout


def _genesis(tmp_path, **overrides) -> str:
    document = {"name": "testnet", "chainId": 4242, "gasLimit": 30_000_000, "blockTime": 1,
                "consensus": {"engine": "poa", "signers": ["0x" + "aa" * 20]},
                "admins": ["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"],
                "accounts": {"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266": {"balance": "1000", "role": "operator"}}}
    document.update(overrides)
    path = tmp_path / "genesis.json"
    path.write_text(json.dumps(document))
    return str(path)


@pytest.mark.parametrize("overrides,message", [
    ({"chainId": "twelve"}, "chainId must be an integer"),
    ({"consensus": {"engine": "pos"}}, "unknown consensus engine 'pos'"),
    ({"consensus": {"engine": "poa", "signers": []}}, "at least one signer"),
    ({"accounts": {"0x12": {"balance": 1}}}, "is not an address"),
    ({"accounts": {"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266": {"role": "wizard"}}}, "unknown role"),
    ({"admins": ["0x" + "bb" * 20]}, "must also be a registered account"),
])
def test_init_reports_genesis_mistakes(tmp_path, overrides, message):
    result = gridnode("init", "--genesis", _genesis(tmp_path, **overrides), "--datadir", str(tmp_path / "d"))
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_init_then_start_a_custom_chain(tmp_path, node_factory):
    datadir = tmp_path / "custom"
    result = gridnode("init", "--genesis", _genesis(tmp_path), "--datadir", str(datadir))
    assert result.returncode == 0 and "chain id 4242" in result.stdout
    node = node_factory(datadir)  # no signer key: a follower that serves RPC
    w3 = node.web3()
    assert w3.eth.chain_id == 4242 and w3.eth.block_number == 0
    assert w3.eth.get_balance("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266") == 1000
    assert "Accounts" not in node.output
    again = gridnode("init", "--genesis", _genesis(tmp_path, chainId=4343), "--datadir", str(datadir))
    assert again.returncode == 1 and "error:" in again.stderr


def test_start_after_chaindata_is_removed_resyncs_the_same_chain(tmp_path, node_factory):
    """An operator removes chaindata to resync: the data dir's genesis.json, not a new devnet, starts again."""
    datadir = tmp_path / "custom"
    assert gridnode("init", "--genesis", _genesis(tmp_path), "--datadir", str(datadir)).returncode == 0
    first = node_factory(datadir)
    genesis_hash = first.web3().eth.get_block(0).hash
    assert first.stop() == 0
    shutil.rmtree(datadir / "chaindata")
    w3 = node_factory(datadir).web3()
    assert w3.eth.chain_id == 4242 and w3.eth.get_block(0).hash == genesis_hash


def test_accounts_new_import_list(tmp_path):
    password = tmp_path / "pw"
    password.write_text("correct horse\n")
    datadir = str(tmp_path / "keys")
    created = gridnode("account", "new", "--datadir", datadir, "--password-file", str(password))
    assert created.returncode == 0, created.stderr
    keyfile = tmp_path / "key.hex"
    keyfile.write_text(DEV_KEYS[1])
    imported = gridnode("account", "import", str(keyfile), "--datadir", datadir, "--password-file", str(password))
    assert imported.returncode == 0 and "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" in imported.stdout
    duplicate = gridnode("account", "import", str(keyfile), "--datadir", datadir, "--password-file", str(password))
    assert duplicate.returncode == 1 and "already in the keystore" in duplicate.stderr
    listing = gridnode("account", "list", "--datadir", datadir)
    assert listing.stdout.count("Account #") == 2
    no_tty = gridnode("account", "new", "--datadir", datadir, stdin="")
    assert no_tty.returncode == 1 and "--password-file" in no_tty.stderr


def test_tx_send_and_keystore_accounts_over_rpc(tmp_path, node_factory):
    node = node_factory()
    result = gridnode("tx", "send", "--rpc", node.url, "--from-key", DEV_KEYS[1],
                      "--to", "0x000000000000000000000000000000000000bEEF", "--value", "1.5elc")
    assert result.returncode == 0, result.stderr
    assert "succeeded in block" in result.stdout
    assert node.web3().eth.get_balance("0x000000000000000000000000000000000000bEEF") == 15 * 10**17
    refused = gridnode("tx", "send", "--rpc", node.url, "--from-key", "0x" + "42" * 32,
                       "--to", "0x000000000000000000000000000000000000bEEF", "--value", "1")
    assert refused.returncode == 1 and "sender not registered" in refused.stderr
    unreachable = gridnode("tx", "send", "--rpc", "http://127.0.0.1:9", "--from-key", DEV_KEYS[1],
                           "--to", "0x000000000000000000000000000000000000bEEF", "--value", "1")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr


def test_second_node_on_same_datadir_or_port_gets_a_clear_error(node_factory):
    node = node_factory()
    same_dir = gridnode("start", "--datadir", str(node.datadir), "--rpc-port", "0", timeout=30)
    assert same_dir.returncode == 1 and "in use by another gridnode" in same_dir.stderr
    port = node.url.rsplit(":", 1)[1]
    same_port = gridnode("start", "--datadir", str(node.datadir) + "-2", "--rpc-port", port, timeout=30)
    assert same_port.returncode == 1 and "already in use" in same_port.stderr


def test_the_harness_hooks_are_refused_on_a_chain_that_is_not_a_test_chain(tmp_path):
    result = gridnode("start", "--datadir", str(tmp_path / "dev"), "--harness", "--no-p2p", "--rpc-port", "0", timeout=30)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--harness is for test chains only" in result.stderr and "'gridnode-devnet'" in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_cleanly(node_factory, sig):
    node = node_factory()
    head = node.web3().eth.block_number
    assert node.stop(sig) == 0
    assert "node stopped" in node.output and "Traceback" not in node.output
    restarted = node_factory(node.datadir)
    assert restarted.web3().eth.block_number >= head


def test_a_pow_node_mid_search_stops_at_once_on_sigterm(node_factory):
    """At one hash a second the first block's search never ends by itself: stopping must end it
    (an executor thread left searching held the exit until SIGKILL; found by `gridnode testnet`)."""
    node = node_factory(None, "--engine", "pow", "--hashrate", "1")
    assert node.web3().eth.block_number == 0
    assert node.stop(signal.SIGTERM, timeout=15) == 0
    assert "node stopped" in node.output and "Traceback" not in node.output


def test_keys_are_made_once_and_shown_again(tmp_path):
    first = gridnode("keys", "--datadir", str(tmp_path / "k"))
    again = gridnode("keys", "--datadir", str(tmp_path / "k"))
    assert first.returncode == 0 and first.stdout == again.stdout
    assert "signer address: 0x" in first.stdout and "node peer id:   12D3KooW" in first.stdout
    assert oct((tmp_path / "k" / "signer.key").stat().st_mode & 0o777) == "0o600"
