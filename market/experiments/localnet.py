"""A live experiment's network: `gridnode localnet` on data dirs prepared with the experiment's
genesis, started in its own session, watched until every node has peered and produced, and
killed, restarted and stopped by index. Shared by `coalition_live` (PoEG) and `v2v_live` (PoSOC):
they differ only in the engine and the genesis builder they pass."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

from market.agents.meter_driver import Rpc, RpcError
from vm.types import Address

START_TIMEOUT = 120.0


@contextlib.contextmanager
def live_run(directory: Path | None, prefix: str) -> Iterator[tuple[Path, contextlib.ExitStack]]:
    """A live run's directory and its cleanup stack: `directory` (created; it must be empty, a run
    starts a new localnet) or a temporary one removed at the end. Inside, SIGTERM unwinds like
    Ctrl-C, so whatever the run put on the stack (nodes, agents) is stopped."""
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with contextlib.ExitStack() as cleanup:
            if directory is None:
                root = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
            else:
                root = Path(directory)
                if root.exists() and any(root.iterdir()):
                    raise ValueError(f"{root} is not empty: a live run starts a new localnet")
                root.mkdir(parents=True, exist_ok=True)
            yield root, cleanup
    finally:
        signal.signal(signal.SIGTERM, previous)


class Localnet:
    """`gridnode localnet --engine ENGINE` over `nodes` data dirs whose genesis is
    `document_for(the nodes' producer addresses)`; `settings` rides along for the run's phases."""

    def __init__(self, root: Path, engine: str, nodes: int, document_for: Callable[[list[Address]], dict] | None,
                 block_time: int = 1, settings: Any = None, consensus: dict | None = None,
                 localnet_args: tuple[str, ...] = (), producers: list[int] | None = None) -> None:
        """`document_for` builds the whole genesis, or None for the devnet's with `consensus`
        (every producer a PoA signer by default); `producers` are the nodes that seal (default
        all; the others follow); `localnet_args` go to `gridnode localnet` (PoW's `--hashrates`,
        one per producer)."""
        self.root = root
        self.engine = engine
        self.count = nodes
        self.document_for = document_for
        self.consensus = consensus
        self.localnet_args = tuple(localnet_args)
        self.block_time = block_time
        self.settings = settings
        self.process: subprocess.Popen | None = None
        self.restarted: dict[int, subprocess.Popen] = {}
        self.nodes: list[dict] = []
        self.producers: list[int] = list(range(nodes)) if producers is None else sorted(producers)
        self.validators: list[str] = []
        """The producers' addresses, in the order of `producers`."""
        self.down: set[int] = set()

    def setup(self) -> None:
        from cli.localnet import prepare_localnet
        from consensus.engine import Signer
        from node.datadir import read_private_key

        datadirs = prepare_localnet(self.root, self.count, self.block_time, self.consensus, self.document_for,
                                    self.producers)
        self.validators = [Signer(read_private_key(datadirs[i].signer_key_file)).address.to_checksum()
                           for i in self.producers]

    def start(self) -> None:
        """Launch the nodes and wait until every one has peered and produced."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start `gridnode localnet` without waiting (it writes localnet.json once the nodes run)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "localnet", "--nodes", str(self.count), "--dir", str(self.root),
             "--engine", self.engine, *self.localnet_args], stdout=open(self.root / "localnet.out", "w"),
            stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        description = self.root / "localnet.json"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gridnode localnet exited:\n" + (self.root / "localnet.out").read_text()[-3000:])
            if description.exists() and self._ready(json.loads(description.read_text())["nodes"]):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the localnet did not come up within {START_TIMEOUT:.0f} s (logs in {self.root})")

    def _ready(self, nodes: list[dict]) -> bool:
        try:
            for node in nodes:
                rpc = Rpc(node["rpc"], timeout=2)
                if int(rpc("eth_blockNumber"), 16) < 1 or int(rpc("net_peerCount"), 16) < len(nodes) - 1:
                    return False
        except RpcError:
            return False
        self.nodes = nodes
        return True

    def node_of(self, address: str) -> int | None:
        """The node that seals as `address` (None for anyone else)."""
        lowered = [v.lower() for v in self.validators]
        return self.producers[lowered.index(address.lower())] if address.lower() in lowered else None

    def rpc(self, index: int, timeout: float = 10.0) -> Rpc:
        return Rpc(self.nodes[index]["rpc"], timeout)

    def live(self) -> list[int]:
        """The nodes the run drives: up and never killed (a restarted node is still catching up)."""
        return [i for i in range(len(self.nodes)) if i not in self.down and i not in self.restarted]

    def kill(self, index: int) -> None:
        os.kill(self.nodes[index]["pid"], signal.SIGKILL)
        self.down.add(index)

    def restart(self, index: int, peers: list[int] | None = None) -> None:
        """Start a killed node again on its data dir (without waiting: the run goes on); with
        `peers`, its bootnodes are those nodes only (the rest of its partition's group)."""
        node = self.nodes[index]
        command = node["command"]
        if peers is not None:
            allowed, parts, command = {self.nodes[p]["p2p"] for p in peers}, iter(command), []
            for part in parts:
                if part != "--bootnode":
                    command.append(part)
                elif (address := next(parts)) in allowed:
                    command += [part, address]
        self.restarted[index] = subprocess.Popen(command, stdout=open(node["log"], "a"),
                                                 stderr=subprocess.STDOUT, start_new_session=True)
        node["pid"] = self.restarted[index].pid

    def wait_restarted(self, index: int) -> None:
        """Wait until a restarted node answers; RuntimeError if it exits or stays silent."""
        process, node = self.restarted[index], self.nodes[index]
        rpc, deadline = self.rpc(index, timeout=2), time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"node{index} exited on restart: " + Path(node["log"]).read_text()[-500:].strip())
            try:
                rpc("eth_blockNumber")
                self.down.discard(index)
                return
            except RpcError:
                time.sleep(0.5)
        raise RuntimeError(f"node{index} did not answer within {START_TIMEOUT:.0f} s of its restart")

    def stop(self) -> None:
        """SIGTERM the localnet (it stops its nodes) and every node restarted here."""
        from cli.localnet import stop_processes

        stop_processes(list(self.restarted.values()))
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def wait_for(what: str, timeout: float, probe: Callable[[], object], poll: float = 0.2):
    """`probe()`'s first truthy value; RuntimeError naming `what` past `timeout` seconds. A node
    under load answers late (RpcError): the deadline bounds it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = probe()
            if value:
                return value
        except RpcError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def blocks(rpc: Rpc, first: int, last: int, full: bool = False) -> list[dict]:
    """Blocks first..last in batches."""
    return rpc.results([("eth_getBlockByNumber", [hex(n), full]) for n in range(first, last + 1)])


def agreement(net: Localnet, say: Callable[[str], None]) -> dict:
    """Wait until every node has caught up with the head seen now, then compare every hash."""
    target = max(int(net.rpc(i)("eth_blockNumber"), 16) for i in net.live())
    rpcs = [net.rpc(i, timeout=30) for i in range(len(net.nodes)) if i not in net.down]  # restarted ones too
    try:
        wait_for(f"every node at block {target}", 60, lambda: all(int(r("eth_blockNumber"), 16) >= target for r in rpcs))
    except RuntimeError as error:
        say(f"  {error}")
    heads = [int(r("eth_blockNumber"), 16) for r in rpcs]
    lowest = min(heads)
    hashes = [[b["hash"] for b in blocks(r, 0, lowest)] for r in rpcs]
    differing = [n for n in range(lowest + 1) if len({h[n] for h in hashes}) > 1]
    return {"nodes": len(rpcs), "heads": heads, "compared_up_to": lowest, "differing_heights": differing[:20],
            "ok": not differing}
