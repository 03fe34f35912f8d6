"""`gridnode localnet`: N nodes on this machine, one genesis, in the foreground.

Each node gets a data dir and a node key, and each producer (every node unless
`--producers` names some) a signer key; the genesis makes the producers its
signers, validators or miners, admits every node key, and funds and registers
the same 20 test-mnemonic accounts as the devnet. The other nodes are followers:
no signer key, so they import, serve and relay but never seal.
`DIR/localnet.json` lists each node's pid, RPC URL, p2p multiaddr and the exact
command that runs it (tests use it to restart a node they killed). Ctrl-C or
SIGTERM stops them all."""
from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from cli.errors import CommandError
from consensus.engine import Signer
from genesis.config import Genesis
from genesis.devnet import (LOCALNET_NAME, MAX_POEG_DEVNET_PROSUMERS, devnet_genesis_document,
                            poeg_genesis_document, posoc_genesis_document)
from node.datadir import DataDir, write_secret
from node.p2p.identity import load_or_create_identity
from node.rpc.server import DEFAULT_APIS
from node.service import open_chain
from vm.types import Address



def add_parsers(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "localnet", help="run an N-node network on this machine",
        description="Create (or reuse) N data dirs sharing one genesis in which every node (or each of "
                    "--producers) seals, and run them in the foreground until Ctrl-C.")
    parser.add_argument("--nodes", type=int, default=None,
                        help="number of nodes (default 4, or one per --hashrates entry)")
    parser.add_argument("--dir", required=True, type=Path, help="directory for the nodes' data dirs")
    parser.add_argument("--engine", default="poa", choices=["poa", "pow", "poeg", "posoc"],
                        help="consensus engine (default poa)")
    parser.add_argument("--block-time", type=int, default=None,
                        help="target seconds between blocks (default 1 for poa, 2 for pow)")
    parser.add_argument("--hashrates", metavar="H1,H2,…",
                        help="pow: each miner's hash-rate cap in hashes/s, one per producer (sets their shares β_j)")
    parser.add_argument("--difficulty", type=int, default=None,
                        help="pow: initial difficulty (default: total hash rate × block time)")
    parser.add_argument("--prosumers", type=int, default=19,
                        help="poeg: prosumers with meter oracles, devnet accounts #1..#19 first (default 19, at most 50)")
    parser.add_argument("--slot-seconds", type=int, default=10,
                        help="poeg: the meters' settlement slot in seconds (default 10)")
    parser.add_argument("--evs", type=int, default=10,
                        help="posoc: the last N of devnet accounts #1..#19 are EVs with chargers (default 10)")
    parser.add_argument("--hour-seconds", type=int, default=10,
                        help="posoc: seconds in one charger-report hour (default 10: a 24-hour window is 4 min)")
    parser.add_argument("--netns", metavar="NAME",
                        help="run each node on its own host: network namespace NAME<i> at its own address on a "
                             "bridge (needs root, ip and nft; removed when the localnet stops)")
    parser.add_argument("--producers", metavar="I,J,…",
                        help="the nodes (0-based) that seal: PoA signers, PoEG/PoSOC validators, PoW miners; the "
                             "others follow, with no signer key (default: every node)")
    parser.add_argument("--harness", action="store_true",
                        help="start every node with --harness (clock skew and byzantine modes over harness_ RPC, "
                             "for gridnode testnet)")
    parser.set_defaults(func=run_localnet)


def _free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports: every socket stays bound until all are chosen, so
    the kernel cannot hand the same port out twice (one port per call could repeat)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]


def prepare_localnet(root: Path, count: int, block_time: int, consensus: dict | None = None,
                     document_for: Callable[[list[Address]], dict] | None = None,
                     producers: Sequence[int] | None = None) -> list[DataDir]:
    """Keys, genesis and initialised data dirs; reused as they are if already made.
    The `producers` (default every node) get signer keys; they are the PoA signers unless
    `consensus` names another engine's parameters, or `document_for(the producers' addresses)`
    makes the whole genesis (PoEG's validators)."""
    datadirs = [DataDir(root / f"node{index}") for index in range(count)]
    if all(d.is_initialised() for d in datadirs):
        return datadirs
    if any(d.root.exists() for d in datadirs):
        raise CommandError(f"{root} holds a partial or different localnet: remove it or use another --dir")
    producers = range(count) if producers is None else producers
    signers, peer_ids = [], []
    for index, datadir in enumerate(datadirs):
        datadir.create()
        if index in producers:
            key = secrets.token_bytes(32)
            write_secret(datadir.signer_key_file, key.hex() + "\n")
            signers.append(Signer(key).address)
        peer_ids.append(load_or_create_identity(datadir.root).peer_id)
    if document_for is not None:
        document = document_for(signers)
    else:
        document = devnet_genesis_document(Signer(b"\x01" * 32).address)
        document["consensus"] = consensus or {"engine": "poa", "signers": [s.to_checksum() for s in signers]}
    document.update(name=LOCALNET_NAME, blockTime=block_time, timestamp=int(time.time()), nodes=peer_ids)
    genesis = Genesis.from_json(document)
    (root / "genesis.json").write_text(genesis.to_json())
    for datadir in datadirs:
        store, _chain = open_chain(datadir, genesis)
        store.close()
        datadir.genesis_file.write_text(genesis.to_json())
    return datadirs


def stop_processes(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM every node, give them `timeout` seconds to close cleanly, then SIGKILL."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def producer_nodes(spec: str | None, count: int) -> list[int]:
    """`--producers 0,2`: those node indices, checked; every node when not given."""
    if spec is None:
        return list(range(count))
    try:
        nodes = [int(part) for part in spec.split(",")]
    except ValueError:
        raise CommandError("--producers takes comma-separated node indices, e.g. 0,1,2") from None
    if not nodes or len(set(nodes)) != len(nodes) or not all(0 <= i < count for i in nodes):
        raise CommandError(f"--producers must name distinct nodes among 0..{count - 1}")
    return sorted(nodes)


def _hashrates(args: argparse.Namespace, miners: int) -> list[int]:
    """One cap per miner under PoW (50,000 hashes/s each unless given); none under PoA."""
    if args.hashrates is None:
        return [50_000] * miners if args.engine == "pow" else []
    if args.engine != "pow":
        raise CommandError("--hashrates is for --engine pow")
    try:
        rates = [int(part) for part in args.hashrates.split(",")]
    except ValueError:
        raise CommandError("--hashrates takes comma-separated integers, e.g. 1000,2000,3000") from None
    if any(rate < 1 for rate in rates):
        raise CommandError("every hash rate must be at least 1")
    if miners != len(rates):
        raise CommandError(f"--hashrates lists {len(rates)} rates for {miners} miners")
    return rates


def pow_consensus(hashrates: list[int], block_time: int, difficulty: int | None = None) -> dict:
    """PoW's genesis section for nodes capped at `hashrates`: by default a difficulty that the
    total hash rate meets once per block time."""
    difficulty = difficulty or sum(hashrates) * block_time
    return {"engine": "pow", "difficulty": difficulty, "minDifficulty": max(difficulty // 10, 1)}


def scored_genesis(engine: str, prosumers: int = 19, slot_seconds: int = 10, evs: int = 10,
                   hour_seconds: int = 10) -> Callable[[list[Address]], dict] | None:
    """The whole-genesis builder of a PoEG or PoSOC localnet (validators → document); None for
    PoA and PoW, whose genesis is the devnet's with their consensus section."""
    if engine == "poeg":
        if not 1 <= prosumers <= MAX_POEG_DEVNET_PROSUMERS or slot_seconds < 1:
            raise CommandError(f"--prosumers takes 1..{MAX_POEG_DEVNET_PROSUMERS} and --slot-seconds a positive number")
        return lambda validators: poeg_genesis_document(validators, prosumers=prosumers, slot_seconds=slot_seconds)
    if engine == "posoc":
        if not 1 <= evs <= 19 or hour_seconds < 1:
            raise CommandError("--evs takes 1..19 and --hour-seconds a positive number")
        return lambda validators: posoc_genesis_document(validators, evs=evs, hour_seconds=hour_seconds)
    return None


def run_localnet(args: argparse.Namespace) -> int:
    if args.nodes is None:  # one per hash rate when only those are given
        args.nodes = len(args.hashrates.split(",")) if args.hashrates and args.producers is None else 4
    if args.nodes < 1:
        raise CommandError("--nodes must be at least 1")
    producers = producer_nodes(args.producers, args.nodes)
    hashrates = _hashrates(args, len(producers))
    block_time = args.block_time or (2 if args.engine == "pow" else 1)
    consensus = pow_consensus(hashrates, block_time, args.difficulty) if args.engine == "pow" else None
    document_for = scored_genesis(args.engine, args.prosumers, args.slot_seconds, args.evs, args.hour_seconds)
    args.dir.mkdir(parents=True, exist_ok=True)
    datadirs = prepare_localnet(args.dir, args.nodes, block_time, consensus, document_for, producers)
    peer_ids = [load_or_create_identity(d.root).peer_id for d in datadirs]
    hosts = _hosts(args.netns, len(datadirs)) if args.netns else None
    try:
        nodes, processes = _launch(datadirs, peer_ids, hashrates, args.harness, hosts)
    except BaseException:
        if hosts is not None:
            hosts.delete()
        raise
    (args.dir / "localnet.json").write_text(json.dumps(
        {"nodes": nodes, **({"hosts": hosts.to_json()} if hosts else {})}, indent=2) + "\n")
    print(f"localnet of {args.nodes} nodes in {args.dir.resolve()} (details in localnet.json):", flush=True)
    for index, node in enumerate(nodes):
        print(f"  node{index}  pid {node['pid']:<7} rpc {node['rpc']}  p2p {node['p2p']}", flush=True)
    print("Ctrl-C stops them all.", flush=True)

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    stop_processes(processes)
    if hosts is not None:
        hosts.delete()
    print("localnet stopped", flush=True)
    return 0


def _hosts(name: str, count: int):
    from cli.netns import Hosts, HostsError

    try:
        return Hosts.create(name, count)
    except HostsError as error:
        raise CommandError(f"--netns: {error}") from None


NETNS_RPC_PORT, NETNS_P2P_PORT = 8545, 30303
"""Each host has its own address, so every node uses the standard ports."""


def _launch(datadirs: list[DataDir], peer_ids: list[str], hashrates: list[int], harness: bool,
            hosts) -> tuple[list[dict], list[subprocess.Popen]]:
    """Start every node, on loopback with free ports or each in its host; what localnet.json lists.
    The `hashrates` go to the producers (the nodes with a signer key), in order."""
    if hosts is None:
        ports = _free_ports(2 * len(datadirs))
        listen = [("127.0.0.1", ports[i], ports[len(datadirs) + i]) for i in range(len(datadirs))]
    else:
        listen = [(hosts.address(i), NETNS_P2P_PORT, NETNS_RPC_PORT) for i in range(len(datadirs))]
    addresses = [f"/ip4/{ip}/tcp/{p2p}/p2p/{peer}" for (ip, p2p, _rpc), peer in zip(listen, peer_ids, strict=True)]
    miners = [i for i, d in enumerate(datadirs) if d.signer_key_file.exists()]
    if hashrates and len(hashrates) != len(miners):
        raise CommandError(f"{len(hashrates)} hash rates for the {len(miners)} miners of this localnet's data dirs")
    rate_of = dict(zip(miners, hashrates))
    nodes, processes = [], []
    for index, datadir in enumerate(datadirs):
        ip, p2p, rpc = listen[index]
        command = [*(hosts.prefix(index) if hosts else ()), sys.executable, "-m", "cli.main", "start",
                   "--datadir", str(datadir.root), "--rpc-host", ip, "--rpc-port", str(rpc),
                   "--listen", f"/ip4/{ip}/tcp/{p2p}",
                   "--http-api", ",".join((*DEFAULT_APIS, "admin"))]  # a test network is steered over admin_
        if hosts:
            command.append("--rpc-allow-remote-admin")  # its address is on a bridge only this machine reaches
        for other, address in enumerate(addresses):
            if other != index:
                command += ["--bootnode", address]
        if index in rate_of:
            command += ["--hashrate", str(rate_of[index])]
        if harness:
            command.append("--harness")
        log_file = open(datadir.root / "node.log", "a")
        processes.append(subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        nodes.append({"pid": processes[-1].pid, "rpc": f"http://{ip}:{rpc}",
                      "p2p": addresses[index], "datadir": str(datadir.root), "log": str(datadir.root / "node.log"),
                      "command": command})
    return nodes, processes
