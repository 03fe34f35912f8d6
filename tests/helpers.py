"""Test helpers: real `gridnode start` processes, and signing as a wallet does."""
from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from eth_account import Account
from web3 import Web3

from node.rpc.server import DEFAULT_APIS
from vm.types import Address

DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
]
"""The test mnemonic's first accounts; #0 is the devnet admin."""


class NodeProcess:
    """A `gridnode start` subprocess on free ports, logging to DATADIR.log, stopped or killed on demand."""

    def __init__(self, datadir: Path, extra_args: tuple[str, ...] = ()) -> None:
        self.datadir = Path(datadir)
        self.extra_args = extra_args
        self.log_path = self.datadir.with_name(self.datadir.name + ".log")
        self.process: subprocess.Popen | None = None
        self.url = ""

    @property
    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def start(self, timeout: float = 30) -> "NodeProcess":
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "start", "--datadir", str(self.datadir), "--rpc-port", "0",
                 "--listen", "/ip4/127.0.0.1/tcp/0", *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.output[offset:]
            match = re.search(r"Started JSON-RPC server at (http://[\d.]+:\d+)/", text)
            if match:
                self.url = match.group(1)
                return self
            if self.process.poll() is not None:
                raise RuntimeError("node exited during start:\n" + text)
            time.sleep(0.05)
        raise RuntimeError("node did not start in time:\n" + self.output[offset:])

    def web3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 30}))

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the node and wait for it; what it printed stays in `output`."""
        self.process.send_signal(sig)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@contextmanager
def node_from_genesis(directory: Path, document: Callable[[Address], dict]) -> Iterator[NodeProcess]:
    """A node on a chain of its own: a fresh signer key, `gridnode init` with the genesis
    `document(signer_address)` makes, `gridnode start`; stopped (exit 0) on the way out."""
    from consensus.engine import Signer
    from node.datadir import write_secret

    datadir = Path(directory) / "node"
    datadir.mkdir(parents=True)
    key = secrets.token_bytes(32)
    write_secret(datadir / "signer.key", key.hex() + "\n")
    genesis = Path(directory) / "genesis.json"
    genesis.write_text(json.dumps(document(Signer(key).address)))
    init = subprocess.run([sys.executable, "-m", "cli.main", "init", "--genesis", str(genesis), "--datadir",
                           str(datadir)], capture_output=True, text=True)
    assert init.returncode == 0, f"gridnode init failed:\n{init.stdout}{init.stderr}"
    node = NodeProcess(datadir).start()
    try:
        yield node
    finally:
        if node.alive():
            assert node.stop() == 0


def wallet(index: int):
    return Account.from_key(DEV_KEYS[index])


def send(w3: Web3, account, tx: dict):
    """Sign locally with eth-account and send raw, as a wallet does; returns the receipt."""
    tx = {"chainId": w3.eth.chain_id, "nonce": w3.eth.get_transaction_count(account.address, "pending"), **tx}
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)


ADMIN_API = ("--http-api", ",".join((*DEFAULT_APIS, "admin")))
"""`gridnode start` arguments that also serve admin_ (off by default), for tests that steer peers."""
