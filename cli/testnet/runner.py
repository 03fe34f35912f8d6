"""`gridnode testnet run MANIFEST`: setup → start → load (with the perturbation timeline beside
it) → wait → check → cleanup, in the manner of CometBFT's e2e runner.

The network is `gridnode localnet` (market/experiments/localnet.py) on data dirs prepared from the
manifest. The load (load.py) writes its history to `DIR/history.jsonl`; a second thread applies
the perturbations at their times and writes them to the same history; a third waits, from the last
perturbation, for every node to reach one common head above everything that existed then
(liveness: production resumed and everyone caught up). Then the checker (checker.py) reads the
history and every node's chain. Everything is bounded in time: the load by `duration`, receipts by
RECEIPT_SECONDS, liveness by `check.liveness`, the nodes' start by the localnet's own bound."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

from cli.netns import Hosts, HostsError
from cli.testnet import checker, disk
from cli.testnet.calls import Workload, abi_call
from cli.testnet.load import History, Load, read
from cli.testnet.manifest import Manifest, Perturbation
from market.agents.meter_driver import Rpc, RpcError
from market.contracts.addresses import METERS
from market.experiments.localnet import Localnet, live_run
from node.datadir import DataDir

RECEIPT_SECONDS = 20.0
"""After the load, how long the run waits for the receipts of acknowledged transactions."""
CONVERGE_SECONDS = 20.0
"""Before the checks, how long the run waits for the honest nodes to hold one head: a block
sealed a moment ago is on its producer only, and its receipts would count as lost elsewhere."""
PROGRESS_SECONDS = 5.0
STOP_SECONDS = 20.0
"""A graceful stop waits this long for the node to exit before it is killed."""


class Network:
    """The localnet, and what the timeline did to each node."""

    def __init__(self, net: Localnet, history: History, say: Callable[[str], None],
                 byzantine: tuple[int, ...] = (), hosts: Hosts | None = None) -> None:
        self.net = net
        self.hosts = hosts
        """Under topology netns, each node's host: partitions and packet loss are nftables rules there."""
        self.byzantine = byzantine
        """Nodes the timeline makes byzantine at some point: the load never uses them, the
        invariants judge the others (the honest nodes)."""
        self.history = history
        self.say = say
        self.state: dict[int, str] = {}
        """node → "killed" | "stopped" | "paused"; absent when up."""
        self.partition: tuple[tuple[int, ...], ...] = ()
        self.applied: list[dict] = []
        self.disk_outcomes: list[dict] = []
        """For each freed disk: whether its node kept running, stopped cleanly or otherwise, and its last words."""
        self.banked: dict[int, Counter] = defaultdict(Counter)
        """What each byzantine node had sent (harness_status) when it was last killed or stopped:
        a restart zeroes the node's own counters."""

    def up(self) -> list[int]:
        return [i for i in range(len(self.net.nodes)) if i not in self.state]

    def honest(self) -> list[int]:
        return [i for i in range(len(self.net.nodes)) if i not in self.byzantine]

    def clients(self) -> list[tuple[int, Rpc]]:
        return [(i, self.net.rpc(i, timeout=3)) for i in self.up() if i not in self.byzantine]

    def heads(self, nodes: list[int] | None = None) -> dict[int, int | None]:
        out = {}
        for i in range(len(self.net.nodes)) if nodes is None else nodes:
            try:
                out[i] = int(self.net.rpc(i, timeout=2)("eth_blockNumber"), 16) if i not in self.state else None
            except RpcError:
                out[i] = None
        return out

    def apply(self, p: Perturbation, at: float) -> None:
        pid = lambda i: self.net.nodes[i]["pid"]  # noqa: E731 - updated by restart
        errors = []
        if p.action in ("kill", "stop", "fill"):
            for i in set(p.nodes) & set(self.byzantine):
                self._bank_sent(i)
        if p.action == "kill":
            for i in p.nodes:
                os.kill(pid(i), signal.SIGKILL)
                self.state[i] = "killed"
        elif p.action == "stop":
            for i in p.nodes:
                self._stop(i)
                self.state[i] = "stopped"
        elif p.action == "pause":
            for i in p.nodes:
                os.kill(pid(i), signal.SIGSTOP)
                self.state[i] = "paused"
        elif p.action == "resume":
            for i in p.nodes:
                os.kill(pid(i), signal.SIGCONT)
                del self.state[i]
        elif p.action == "wipe":
            for i in p.nodes:  # keys and genesis stay: the node starts again as a new, empty member
                datadir = self._datadir(i)
                if os.path.ismount(datadir.chaindata):  # its own disk stays mounted
                    disk.empty(datadir.chaindata)
                else:
                    shutil.rmtree(datadir.chaindata)
                datadir.txpool_journal.unlink(missing_ok=True)
        elif p.action == "fill":
            for i in p.nodes:
                taken = disk.fill(self._datadir(i).chaindata)
                self.state[i] = "out of disk"
                self.say(f"  node{i}: its disk's last {taken:,} bytes taken")
        elif p.action == "free":
            for i in p.nodes:
                disk.free(self._datadir(i).chaindata)
                self.disk_outcomes.append(self._after_full_disk(i))
                del self.state[i]
        elif p.action == "restart":
            for i in p.nodes:
                self._restart(i)
                del self.state[i]
        elif p.action == "partition":
            self.partition = p.groups
            errors = self._firewall(p.groups) if self.hosts else self._links(p.groups, connect=False)
        elif p.action == "heal":
            errors = self._firewall(()) if self.hosts else self._links(self.partition, connect=True)
            self.partition = ()
        elif p.action == "loss":
            for i in p.nodes:
                try:
                    self.hosts.loss(i, p.percent)
                except HostsError as error:
                    errors.append(f"node{i}: {error}")
        elif p.action in ("skew", "byzantine", "honest"):
            method, value = {"skew": ("harness_setClockOffset", p.seconds), "byzantine": ("harness_setByzantine", p.mode),
                             "honest": ("harness_setByzantine", None)}[p.action]
            for i in p.nodes:
                try:
                    self.net.rpc(i, timeout=3)(method, value)
                except RpcError as error:
                    errors.append(f"node{i}: {error}")
        record = {"at": round(at, 2), "action": p.describe(), "heads": self.heads(), "errors": errors}
        self.applied.append(record)
        self.history.write("perturb", action=p.action, nodes=list(p.nodes), groups=[list(g) for g in p.groups],
                           errors=errors)
        self.say(f"  t={at:5.1f} s  {p.describe()}" + (f"  ({'; '.join(errors)})" if errors else ""))

    def _datadir(self, index: int) -> DataDir:
        return DataDir(Path(self.net.nodes[index]["datadir"]))

    def _alive(self, index: int) -> bool:
        process = self.net.restarted.get(index)
        return process.poll() is None if process is not None else _running(self.net.nodes[index]["pid"])

    def _after_full_disk(self, index: int) -> dict:
        """How node `index` met its full disk, read when it is freed; a node that stopped is started again."""
        if self._alive(index):
            return {"node": index, "outcome": "kept running", "said": ""}
        tail = Path(self.net.nodes[index]["log"]).read_text(errors="replace")[-4000:].splitlines()
        said = next((line for line in reversed(tail) if line.startswith("error:")), tail[-1] if tail else "")
        clean = said.startswith("error: the node stopped: the chain store could not write")
        self._restart(index)
        return {"node": index, "outcome": "stopped cleanly" if clean else "stopped otherwise", "said": said[:300]}

    def _restart(self, index: int) -> None:
        """Start a node again. During a loopback partition it dials only its own group: its
        bootnodes are every node, and the admin RPC that cut the links cannot tell a process that
        was not running (under netns the hosts' firewalls hold the partition anyway)."""
        group = next((g for g in self.partition if index in g), None) if self.hosts is None else None
        self.net.restart(index, None if group is None else [i for i in group if i != index])

    def _bank_sent(self, index: int) -> None:
        try:
            self.banked[index].update(self.net.rpc(index, timeout=3)("harness_status")["sent"])
        except RpcError as error:  # a node that cannot answer loses its counts; the row then says "never acted"
            self.say(f"  node{index}: what it sent is unknown: {error}")

    def sent(self, index: int) -> dict[str, int]:
        """What a byzantine node sent in each mode over the whole run, across its restarts."""
        return dict(self.banked[index] + Counter(self.net.rpc(index, timeout=10)("harness_status")["sent"]))

    def _stop(self, index: int) -> None:
        """SIGTERM and wait for the node to exit, as an operator's graceful restart does."""
        pid = self.net.nodes[index]["pid"]
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            if not self._alive(index):
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def _firewall(self, groups: tuple[tuple[int, ...], ...]) -> list[str]:
        """Each node's host drops the packets of every node outside its group (none: healed)."""
        errors = []
        for i in range(len(self.net.nodes)):
            others = [o for g in groups if i not in g for o in g]
            try:
                self.hosts.partition(i, others)
            except HostsError as error:
                errors.append(f"node{i}: {error}")
        return errors

    def _links(self, groups: tuple[tuple[int, ...], ...], connect: bool) -> list[str]:
        """Drop (or restore) every link between two groups, on both ends, over admin RPC. A node
        that is down cannot be told: said in the errors."""
        errors = []
        nodes = self.net.nodes
        for g, group in enumerate(groups):
            for other in groups[g + 1:]:
                for a in group:
                    for b in other:
                        for here, there in ((a, b), (b, a)):
                            target = nodes[there]["p2p"] if connect else nodes[there]["p2p"].rsplit("/p2p/", 1)[-1]
                            try:
                                self.net.rpc(here, timeout=3)("admin_addPeer" if connect else "admin_removePeer", target)
                            except RpcError as error:
                                errors.append(f"node{here}→node{there}: {error}")
        return errors


def _timeline(network: Network, manifest: Manifest, started: float, stop: threading.Event,
              healed: threading.Event) -> None:
    for p in manifest.perturbations:
        if stop.wait(max(0.0, started + p.at - time.monotonic())):
            return
        network.apply(p, time.monotonic() - started)
    healed.set()


def _liveness(network: Network, manifest: Manifest, healed: threading.Event, result: dict) -> None:
    """From the last perturbation: every node at one common head above every head seen then."""
    healed.wait()
    start = time.monotonic()
    honest = network.honest()
    baseline = max((h for h in network.heads(honest).values() if h is not None), default=0)
    deadline = start + manifest.liveness
    while time.monotonic() < deadline:
        heads = network.heads(honest)
        if all(h is not None for h in heads.values()):
            lowest = min(heads.values())
            if lowest > baseline and _one_block(network, list(heads), hex(lowest)):
                result.update(ok=True, seconds=round(time.monotonic() - start, 2), height=lowest, heads=heads)
                return
        time.sleep(0.3)
    result.update(ok=False, seconds=None, heads=network.heads(honest), baseline=baseline)


def _one_block(network: Network, nodes: list[int], tag: str) -> bool:
    """Whether every one of `nodes` answers with the same block hash at `tag` (a height or "latest")."""
    hashes = set()
    for i in nodes:
        try:
            hashes.add(network.net.rpc(i, timeout=2)("eth_getBlockByNumber", tag, False)["hash"])
        except (RpcError, TypeError):
            return False
    return len(hashes) == 1


def _converge(network: Network, seconds: float) -> bool:
    """Wait until every honest node reports one head hash (between two blocks, on a healthy network,
    within milliseconds); False after `seconds` (the checks then report what differs)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _one_block(network, network.honest(), "latest"):
            return True
        time.sleep(0.2)
    return False


def run(manifest: Manifest, directory: Path | None = None, say: Callable[[str], None] = print) -> dict:
    from eth_account import Account

    from cli.localnet import pow_consensus, scored_genesis
    from genesis.config import Genesis
    from genesis.devnet import DEVNET_ACCOUNTS, TEST_MNEMONIC

    started_run = time.monotonic()
    with live_run(directory, "gridnode-testnet-") as (root, cleanup):
        say(f"setup: {manifest.nodes} {manifest.engine} nodes, {manifest.block_time} s blocks, in {root}")
        consensus = pow_consensus(list(manifest.hashrates), manifest.block_time) if manifest.engine == "pow" else None
        args = ("--harness",) + (("--hashrates", ",".join(map(str, manifest.hashrates))) if manifest.engine == "pow" else ())
        if manifest.topology == "netns":
            args += ("--netns", f"gn{secrets.token_hex(3)}")
        net = Localnet(root, manifest.engine, manifest.nodes, scored_genesis(manifest.engine), manifest.block_time,
                       consensus=consensus, localnet_args=args, producers=list(manifest.producers))
        net.setup()
        if manifest.disk:
            _give_disks(net, manifest.disk, cleanup, keep=directory is not None)
        cleanup.callback(_delete_hosts, root)  # after the localnet stops (it removes them itself unless it failed)
        cleanup.callback(net.stop)
        say("start: waiting for every node to peer and produce …")
        net.start()
        hosts = _hosts(root)
        if hosts is not None:
            say(f"  hosts: namespaces {hosts.namespace(0)}..{hosts.namespace(hosts.count - 1)} on {hosts.subnet}.0/24")
        genesis = Genesis.load(root / "genesis.json")
        Account.enable_unaudited_hdwallet_features()
        senders, oracles = ([Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{k + offset}")
                             for k in range(1, manifest.senders + 1)] for offset in (0, DEVNET_ACCOUNTS - 1))
        work = Workload(senders, oracles, manifest.market, manifest.seed, _meter_slot(net.rpc(0, timeout=10)))
        history = History(root / "history.jsonl")
        cleanup.callback(history.close)
        network = Network(net, history, say, manifest.byzantine, hosts)
        cleanup.callback(_resume_paused, network)
        load = Load(work, genesis.chain_id, network.clients, manifest.rate, history)
        market = f" ({manifest.market:.0%} of them double-auction orders)" if manifest.market else ""
        say(f"load: {manifest.rate:g} transactions/s{market} from {manifest.senders} senders for {manifest.duration:g} s; "
            f"{len(manifest.perturbations)} perturbations; history in {root / 'history.jsonl'}")
        stop, healed, live = threading.Event(), threading.Event(), {}
        started = time.monotonic()
        threads = [threading.Thread(target=_timeline, args=(network, manifest, started, stop, healed), daemon=True),
                   threading.Thread(target=_liveness, args=(network, manifest, healed, live), daemon=True),
                   threading.Thread(target=_progress, args=(network, load, started, stop, say), daemon=True)]
        for thread in threads:
            thread.start()
        try:
            load.run(manifest.duration)
            threads[0].join(STOP_SECONDS + 10)  # the timeline's last steps may still be under way
        finally:
            stop.set()
            healed.set()
        say("wait: receipts of what was acknowledged, and liveness after the last perturbation …")
        load.settle(RECEIPT_SECONDS)
        threads[1].join(manifest.liveness + 10)
        converged = _converge(network, CONVERGE_SECONDS)
        say("check:" if converged else f"check: (the honest nodes held no common head within {CONVERGE_SECONDS:g} s)")
        rows = _checks(network, manifest, genesis, work.accounts, read(root / "history.jsonl"), live)
        say(checker.table(rows))
        honest = network.net.rpc(network.honest()[0], timeout=30)
        stall = checker.longest_stall(honest, int(honest("eth_blockNumber"), 16))
        say(f"longest stall: {stall['seconds']} s between blocks (after block {stall['after_block']})")
        return {"manifest": manifest.name, "engine": manifest.engine, "nodes": manifest.nodes,
                "seconds": round(time.monotonic() - started_run, 1), "directory": str(root),
                "load": load.counts, "perturbations": network.applied, "liveness": live, "longest_stall": stall,
                "invariants": rows, "passed": all(r["ok"] for r in rows)}


SLASHING = ("poeg", "posoc")
"""Engines that slash on chain; their grid_<engine> view lists the latest penalties."""


def _checks(network: Network, manifest: Manifest, genesis, senders, history: list[dict], live: dict) -> list[dict]:
    honest = network.honest()
    rpcs = [network.net.rpc(i, timeout=30) for i in honest]
    rows = [checker.safety(rpcs, manifest.confirmations), checker.acknowledged(rpcs, history)]
    head = min(int(r("eth_blockNumber"), 16) for r in rpcs)
    rows.append(checker.nonces(rpcs[0], [s.address for s in senders], head))
    rows.append(checker.conservation(rpcs[0], genesis.create_engine(), [a.address.to_checksum() for a in genesis.accounts],
                                     head))
    if manifest.market:
        rows.append(checker.market(rpcs, head, history))
    if manifest.perturbations:
        rows.append({"name": "liveness", "ok": bool(live.get("ok")), "evidence": (
            f"every node at block {live['height']} (one hash) {live['seconds']} s after the last perturbation "
            f"(bound {manifest.liveness:g} s)" if live.get("ok") else
            f"not every node reached one common head within {manifest.liveness:g} s of the last perturbation: "
            f"heads {live.get('heads')}, above {live.get('baseline')}")})
    if network.disk_outcomes:
        rows.append(checker.full_disk(network.disk_outcomes))
    modes = _modes(manifest)
    rows.append(checker.evidence(network.net.nodes, dict(zip(network.net.producers, network.net.validators)), honest,
                                 modes,
                                 [network.net.rpc(i, timeout=10)("admin_misbehaviour") for i in honest],
                                 {i: network.sent(i) for i in modes},
                                 rpcs[0](f"grid_{manifest.engine}")["penalties"] if manifest.engine in SLASHING else []))
    return rows


def _meter_slot(rpc) -> int:
    """The Meters contract's current slot: the slot the load's oracles report."""
    reply = rpc("eth_call", {"to": METERS.to_checksum(), "data": "0x" + abi_call("currentSlot()").hex()}, "latest")
    return int(reply, 16)


def _modes(manifest: Manifest) -> dict[int, set[str]]:
    """Each byzantine node's modes over the run."""
    modes: dict[int, set[str]] = {}
    for p in manifest.perturbations:
        if p.action == "byzantine":
            for i in p.nodes:
                modes.setdefault(i, set()).add(p.mode)
    return modes


def _progress(network: Network, load: Load, started: float, stop: threading.Event, say) -> None:
    while not stop.wait(PROGRESS_SECONDS):
        heads = network.heads()
        say(f"  t={time.monotonic() - started:5.1f} s  heads {[heads[i] for i in sorted(heads)]}  "
            f"sent {load.counts['submitted']}, acknowledged {load.counts['acknowledged']}, "
            f"receipts {load.counts['receipts']}, failed {load.counts['failed']}")


def _hosts(root: Path) -> Hosts | None:
    """The hosts `gridnode localnet --netns` made, from its localnet.json."""
    hosts = json.loads((root / "localnet.json").read_text()).get("hosts")
    return Hosts.from_json(hosts) if hosts else None


def _give_disks(net: Localnet, mib: int, cleanup, keep: bool) -> None:
    """Each node's chain store on a tmpfs of `mib` MiB, unmounted when the run ends (after the
    nodes stop: the stack unwinds in reverse), its files copied back first when the run is kept."""
    reason = disk.why_not()
    if reason:
        raise RuntimeError(f"disk = {mib}: {reason}")
    for i in range(net.count):
        chaindata = DataDir(net.root / f"node{i}").chaindata
        disk.give_own_disk(chaindata, mib)
        cleanup.callback(disk.take_back, chaindata, keep)


def _delete_hosts(root: Path) -> None:
    if (root / "localnet.json").exists() and (hosts := _hosts(root)) is not None:
        hosts.delete()


def _resume_paused(network: Network) -> None:
    """A paused node must be resumed before the localnet can stop it."""
    for i, state in list(network.state.items()):
        if state == "paused":
            try:
                os.kill(network.net.nodes[i]["pid"], signal.SIGCONT)
            except ProcessLookupError:
                continue


def _running(pid: int) -> bool:
    """Whether `pid` still runs. The localnet's own nodes are children of `gridnode localnet`,
    which reaps them only when it stops: an exited one lingers as a zombie, so look at its state."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
