"""The nodes a benchmark starts and stops: a gridnode devnet, Anvil; each in its own process
group, its output in a log, its RPC URL read from that log."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 60


class Started:
    """A node process this script started: gridnode devnet or Anvil; stopped with its process group."""

    def __init__(self, label: str, command: list[str], pattern: str, log_path: Path, url: str | None = None) -> None:
        self.label, self.log_path = label, log_path
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
                                        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            match = re.search(pattern, log_path.read_text())
            if match:
                self.url = url or match.group(1)
                return
            if self.process.poll() is not None:
                raise SystemExit(f"{label} exited during start:\n{log_path.read_text()}")
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"{label} did not start within {START_SECONDS} s:\n{log_path.read_text()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def start_gridnode(root: Path, label: str, ordering: bool = True, p2p: bool = False) -> Started:
    """`gridnode start` on a fresh devnet data dir under `root` (1 s blocks, 60M gas)."""
    datadir = root / label
    command = [sys.executable, "-m", "cli.main", "start", "--datadir", str(datadir), "--rpc-port", "0"]
    command += [] if p2p else ["--no-p2p"]
    command += [] if ordering else ["--no-bid-ordering"]
    return Started(label, command, r"Started JSON-RPC server at (http://[\d.]+:\d+)/", root / f"{label}.log")


def rss_mib(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_anvil(root: Path, binary: str) -> Started:
    """Anvil with the devnet's block time and gas limit and the same 20 funded test accounts."""
    port = free_port()
    command = [binary, "--port", str(port), "--block-time", "1", "--accounts", "20", "--balance", "10000",
               "--gas-limit", "60000000"]
    return Started("anvil", command, r"Listening on", root / "anvil.log", f"http://127.0.0.1:{port}")


ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64"
ANVIL_PLACES = (Path("node_modules") / ANVIL_PACKAGE / "bin" / "anvil",
                Path("/opt/anvil/node_modules") / ANVIL_PACKAGE / "bin" / "anvil")


def find_anvil() -> str | None:
    """Anvil on PATH, or installed from npm here or in /opt/anvil (README: Benchmarks)."""
    import shutil

    found = shutil.which("anvil")
    if found:
        return found
    for place in ANVIL_PLACES:
        path = place if place.is_absolute() else ROOT / place
        if path.exists():
            return str(path)
    return None


def start_localnet(root: Path, nodes: int) -> tuple[Started, list[dict]]:
    """`gridnode localnet --nodes N` (PoA, every node a signer, 1 s blocks) in its own process
    group; returns it and localnet.json's nodes (pid, rpc, …)."""
    directory = root / f"localnet{nodes}"
    command = [sys.executable, "-m", "cli.main", "localnet", "--nodes", str(nodes), "--dir", str(directory)]
    started = Started(f"{nodes} node{'s' if nodes > 1 else ''}", command, r"(Ctrl-C stops them all)",
                      root / f"localnet{nodes}.log", url="")
    members = json.loads((directory / "localnet.json").read_text())["nodes"]
    started.url = members[0]["rpc"]
    return started, members
