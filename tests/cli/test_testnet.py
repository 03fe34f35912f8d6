"""`gridnode testnet`: manifests are refused with the field and the reason before anything starts;
a soak's timeline is reproduced by its seed; and (slow) the shipped manifests run a real localnet
under load and faults with every invariant holding."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector

from cli.netns import why_not
from cli.testnet.calls import Workload
from cli.testnet.checker import acknowledged, evidence, table
from cli.testnet.load import History
from cli.testnet.manifest import ManifestError, Perturbation, load, parse, soak
from cli.testnet.runner import Network, _converge

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_manifests_parse():
    for name in ("poa", "pow", "poeg", "posoc"):
        manifest = load(ROOT / "testnets" / f"{name}.toml")
        assert manifest.engine == name and manifest.nodes >= 4
        actions = {p.action for p in manifest.perturbations}
        assert {"kill", "restart", "partition", "heal", "pause", "resume", "skew", "byzantine", "honest"} <= actions
        if name in ("poa", "poeg"):
            assert "wipe" in actions
        assert len({p.mode for p in manifest.perturbations if p.action == "byzantine"}) >= 2
        if name in ("poa", "pow"):  # the 2|2 partition of producers with load on both sides, and a graceful stop
            assert "stop" in actions
            assert any(p.groups[:2] and [len(set(g) & set(manifest.producers)) for g in p.groups[:2]] == [2, 2]
                       for p in manifest.perturbations)
        if name == "poa":  # a follower, wiped while its one peer lies in sync
            follower = next(i for i in range(manifest.nodes) if i not in manifest.producers)
            assert "lying-sync" in {p.mode for p in manifest.perturbations}
            assert any(p.action == "wipe" and follower in p.nodes for p in manifest.perturbations)
    hosts = load(ROOT / "testnets" / "poa-netns.toml")  # the same faults as between real hosts
    assert hosts.topology == "netns" and hosts.disk and {"partition", "heal", "loss", "kill", "byzantine", "fill",
                                                         "free"} <= {p.action for p in hosts.perturbations}


@pytest.mark.parametrize("data, reason", [
    ({"engine": "raft"}, "engine: one of poa, pow"),
    ({"nodes": 0}, "nodes: an integer in 1..8"),
    ({"colour": "blue"}, "unknown field(s): colour"),
    ({"hashrates": [1, 2]}, "hashrates: only for engine"),
    ({"engine": "pow", "nodes": 2, "hashrates": [1]}, "hashrates: 2 positive integers"),
    ({"load": {"rate": -1}}, "load.rate: a number in 0..1000"),
    ({"engine": "pow", "producers": [0, 1], "hashrates": [1, 2, 3]},
     "hashrates: 2 positive integers, one per producer"),
    ({"producers": []}, "producers: a non-empty list of node indices"),
    ({"producers": [0, 0, 1]}, "producers: a node named twice"),
    ({"producers": [0, 5]}, "producers: node indices are 0..3"),
    ({"producers": [0, 1, 2], "perturb": [{"at": 1, "action": "byzantine", "nodes": [3], "mode": "equivocate"},
                                          {"at": 2, "action": "honest", "nodes": [3]}]},
     "node3 is a follower (no signer key): its one mode is lying-sync"),
    ({"perturb": [{"at": 1, "action": "explode", "nodes": [0]}]}, "perturb[0].action"),
    ({"perturb": [{"at": 1, "action": "kill", "nodes": [9]}]}, "node indices are 0..3"),
    ({"perturb": [{"at": 1, "action": "kill", "nodes": [1]}]}, "must end whole (liveness is checked after it): still node1 killed"),
    ({"perturb": [{"at": 1, "action": "restart", "nodes": [1]}]}, "node1 is not killed or stopped"),
    ({"perturb": [{"at": 1, "action": "wipe", "nodes": [1]}]}, "node1 is not killed or stopped"),  # not under a live node
    ({"perturb": [{"at": 1, "action": "pause", "nodes": [1]}, {"at": 2, "action": "restart", "nodes": [1]}]},
     "node1 is not killed or stopped"),
    ({"perturb": [{"at": 5, "action": "heal"}]}, "no partition to heal"),
    ({"perturb": [{"at": 5, "action": "partition", "groups": [[0, 1], [1, 2]]}]}, "a node in two groups"),
    ({"perturb": [{"at": 9, "action": "kill", "nodes": [1]}, {"at": 2, "action": "restart", "nodes": [1]}]},
     "in the order of their `at`"),
    ({"duration": 10, "perturb": [{"at": 11, "action": "heal"}]}, "perturb[0].at: a number in 0..10"),
    ({"perturb": [{"at": 1, "action": "byzantine", "nodes": [3], "mode": "lie"}]}, "perturb[0].mode: under poa one of"),
    ({"engine": "pow", "perturb": [{"at": 1, "action": "byzantine", "nodes": [3], "mode": "withhold"}]},
     "under pow one of equivocate, bad-state-root, bad-seal, flood-invalid-tx"),
    ({"perturb": [{"at": 1, "action": "byzantine", "nodes": [3], "mode": "equivocate"}]},
     "still node3 byzantine"),
    ({"perturb": [{"at": 1, "action": "skew", "nodes": [0], "seconds": 30}]}, "still node0 skewed"),
    ({"perturb": [{"at": 1, "action": "skew", "nodes": [0], "seconds": 7200}]}, "seconds: a number in -3600..3600"),
    ({"perturb": [{"at": 1, "action": "honest", "nodes": [2]}]}, "node2 is not byzantine"),
    ({"topology": "vlan"}, "topology: one of loopback, netns"),
    ({"perturb": [{"at": 1, "action": "loss", "nodes": [1], "percent": 20}]}, "packet loss needs topology = \"netns\""),
    ({"topology": "netns", "perturb": [{"at": 1, "action": "loss", "nodes": [1], "percent": 20}]},
     "still node1 losing packets"),
    ({"topology": "netns", "perturb": [{"at": 1, "action": "loss", "nodes": [1], "percent": 120}]},
     "percent: an integer in 0..100"),
    ({"perturb": [{"at": 1, "action": "kill", "nodes": [2], "percent": 5}]}, "percent for loss"),
    ({"perturb": [{"at": 1, "action": "fill", "nodes": [1]}]}, "fill needs disk = MiB"),
    ({"disk": 8}, "at least 16 MiB"),
    ({"disk": 32, "perturb": [{"at": 1, "action": "fill", "nodes": [1]}]}, "still node1 out of disk"),
    ({"disk": 32, "perturb": [{"at": 1, "action": "free", "nodes": [1]}]}, "node1's disk is not full"),
    ({"perturb": [{"at": 1, "action": "kill", "nodes": [2], "mode": "equivocate"}]}, "mode for byzantine"),
    ({"perturb": [{"at": 1, "action": "byzantine", "nodes": [2], "mode": "withhold"},
                  {"at": 2, "action": "kill", "nodes": [2]}]}, "node2 is byzantine: end that first"),
    ({"perturb": [{"at": 1, "action": "byzantine", "nodes": [2, 3], "mode": "withhold"},
                  {"at": 2, "action": "honest", "nodes": [2, 3]}]}, "byzantine nodes must stay a minority"),
])
def test_a_bad_manifest_is_refused_with_the_field_and_the_reason(data, reason):
    with pytest.raises(ManifestError) as error:
        parse(data)
    assert reason in str(error.value)


def test_a_missing_or_broken_file_is_a_readable_error(tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text("engine = \n")
    for path, reason in ((tmp_path / "none.toml", "No such file"), (broken, "not TOML")):
        result = subprocess.run([sys.executable, "-m", "cli.main", "testnet", "run", str(path)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and reason in result.stderr and "Traceback" not in result.stderr


def test_a_soak_timeline_is_its_seeds_and_ends_whole():
    first, again, other = soak("poa", 4, 600, 7), soak("poa", 4, 600, 7), soak("poa", 4, 600, 8)
    assert first == again and first != other
    assert first.healed_at <= 590 and len(first.perturbations) >= 20
    assert {p.action for p in first.perturbations} >= {"partition", "heal"}
    for p in first.perturbations:
        assert len(p.nodes) <= 1  # a minority of 4: one node at a time
    assert first.byzantine == (3,)  # the last node, and only it
    modes = [p.mode for p in first.perturbations if p.action == "byzantine"]
    assert set(modes[:-1]) <= {"equivocate", "withhold"} and modes[-1] == "bad-state-root"
    assert [p.action for p in first.perturbations][-2:] == ["byzantine", "honest"]
    assert any(p.action == "skew" and p.seconds for p in first.perturbations)
    assert soak("pow", 2, 600, 7).byzantine == ()  # two nodes: no honest majority to judge by
    hosts = soak("poa", 4, 600, 7, topology="netns")  # between hosts, packet loss is a fault too
    losses = [p for p in hosts.perturbations if p.action == "loss"]
    assert hosts.topology == "netns" and losses and all(0 <= p.percent <= 40 for p in losses)
    assert all(p.action != "loss" for p in first.perturbations)
    with pytest.raises(ManifestError, match="60.."):
        soak("poa", 4, 10, 0)


def test_the_market_load_reports_and_mints_first_approves_then_trades():
    senders, oracles = [Account.create() for _ in range(2)], [Account.create() for _ in range(2)]
    work = Workload(senders, oracles, market=1.0, seed=5, slot=7)
    first = [work.next() for _ in range(4)]
    assert [(a, c.kind) for a, c in first] == [(oracles[0], "reading"), (oracles[0], "mint"),
                                               (oracles[1], "reading"), (oracles[1], "mint")]
    then = [(a, c.kind) for a, c in (work.next() for _ in range(8))]
    assert then[:4] == [(senders[0], "approve"), (senders[1], "approve")] * 2
    assert {kind for _, kind in then[4:]} <= {"bid", "ask"} and work.accounts == oracles + senders
    refused = work.next()
    work.requeue(*refused)  # an order the node refused is not sent again; a setup call is
    assert work.next() != refused
    work.requeue(*first[0])
    assert work.next() == first[0]
    plain = Workload(senders, oracles, market=0.0, seed=5, slot=7)
    assert {plain.next()[1].kind for _ in range(50)} == {"transfer"} and plain.accounts == senders
    abis = {name: json.loads((ROOT / "market" / "contracts" / f"{name}.abi.json").read_text())
            for name in ("meters", "energy_token", "erc20", "double_auction")}
    selectors = {function_signature_to_4byte_selector(f"{e['name']}({','.join(i['type'] for i in e['inputs'])})")
                 for abi in abis.values() for e in abi if e["type"] == "function"}
    assert {call.data[:4] for _, call in first + [work.next() for _ in range(20)]} <= selectors  # the contracts' ABI
    same = [Workload(senders, oracles, market=0.5, seed=9, slot=7) for _ in range(2)]
    assert [same[0].next() for _ in range(40)] == [same[1].next() for _ in range(40)]  # the seed's sequence


def test_the_table_says_pass_or_fail_with_the_evidence():
    text = table([{"name": "safety", "ok": True, "evidence": "identical"},
                  {"name": "acknowledged", "ok": False, "evidence": "node1 lacks 2"}])
    assert text.splitlines() == ["  PASS  safety        identical", "  FAIL  acknowledged  node1 lacks 2"]


NODES = [{"p2p": f"/ip4/127.0.0.1/tcp/{4000 + i}/p2p/peer{i}"} for i in range(4)]
PRODUCERS = [f"0x{i:040x}" for i in range(4)]


def report(penalties=(), equivocations=(), missed=None) -> dict:
    return {"penalties": [{"peer": peer, "reason": reason} for peer, reason in penalties],
            "equivocations": [{"producer": producer, "number": 5} for producer in equivocations],
            "missedTurns": missed or {}}


class ReceiptsOf:
    """A node's RPC that knows the receipts of `known` (status 1, in block 0xb)."""

    def __init__(self, known) -> None:
        self.known = set(known)

    def batch(self, calls):
        return [{"result": {"status": "0x1", "blockHash": "0xb"} if params[0] in self.known else None}
                for _, params in calls]


def sent(tx: int, tx_hash: str, nonce: int, receipt: bool = True) -> list[dict]:
    """The history of one transfer the load signed, acknowledged and (by default) saw mined."""
    return ([{"op": "submit", "tx": tx, "sender": "0xS", "nonce": nonce}, {"op": "ack", "tx": tx, "hash": tx_hash}]
            + [{"op": "receipt", "tx": tx, "hash": tx_hash, "status": 1, "blockHash": "0xb"}] * receipt)


def test_the_acknowledged_row_names_the_node_lacking_a_receipt_a_client_saw():
    history = sent(1, "0x1", 0) + sent(2, "0x2", 1)
    row = acknowledged([ReceiptsOf({"0x1", "0x2"}), ReceiptsOf({"0x1", "0x2"})], history)
    assert row["ok"] and row["lost"] == 0
    row = acknowledged([ReceiptsOf({"0x1", "0x2"}), ReceiptsOf({"0x1"})], history)  # once, a crash: no status differs
    assert not row["ok"] and row["lost"] == 1 and row["evidence"] == "node1 lacks 1 (e.g. 0x2)"


def test_a_receipt_dropped_by_a_reorg_for_the_loads_own_transaction_with_that_nonce_is_not_lost():
    # 0x2 was seen mined in a block a reorg dropped; the load had signed 0x3 with the same nonce
    # (read from a node that had not seen 0x2), and 0x3 is what the chain kept
    history = sent(1, "0x1", 0) + sent(2, "0x2", 1) + sent(3, "0x3", 1, receipt=False)
    row = acknowledged([ReceiptsOf({"0x1", "0x3"})], history)
    assert row["ok"] and row["lost"] == 0 and row["replaced"] == 1 and "replaced by the load's own" in row["evidence"]
    row = acknowledged([ReceiptsOf({"0x1"})], history)  # neither: lost
    assert not row["ok"] and row["lost"] == 1


def test_the_evidence_row_wants_every_mode_caught_and_nothing_against_the_honest():
    modes = {3: {"equivocate", "bad-state-root", "withhold"}}
    caught = [report([("peer3", "invalid block 9: state root mismatch")], [PRODUCERS[3]]),
              report(missed={PRODUCERS[3]: 2}), report()]
    sent = {3: {"equivocate": 4, "bad-state-root": 3, "withhold": 5}}
    row = evidence(NODES, dict(enumerate(PRODUCERS)), [0, 1, 2], modes, caught, sent)
    assert row["ok"], row
    assert "node3 caught for bad-state-root, equivocate, withhold" in row["evidence"]
    against_honest = [caught[0], report([("peer2", "invalid block 4: state root mismatch")]), report()]
    row = evidence(NODES, dict(enumerate(PRODUCERS)), [0, 1, 2], modes, against_honest, sent)
    assert not row["ok"] and "node1 penalised node2: invalid block 4" in row["evidence"]
    assert "node3 withhold not caught" in row["evidence"]
    row = evidence(NODES, dict(enumerate(PRODUCERS)), [0, 1, 2], {3: {"bad-seal"}},
                   [report([("peer3", "invalid block 9: state root mismatch")]), report(), report()], {3: {"bad-seal": 2}})
    assert not row["ok"] and "node3 bad-seal not caught" in row["evidence"]  # caught, but not for that
    row = evidence(NODES, dict(enumerate(PRODUCERS)), [0, 1, 2], {3: {"equivocate"}}, [report(), report(), report()],
                   {3: {}})
    assert not row["ok"] and "node3 never acted in equivocate" in row["evidence"]  # no turn came: nothing was tested
    row = evidence(NODES, dict(enumerate(PRODUCERS)), [0, 1, 2], {3: {"equivocate", "bad-seal"}},
                   [report([("peer3", "invalid block 9: poeg: invalid seal signature")]), report(), report()],
                   {3: {"bad-seal": 3}})
    assert row["ok"] and row["never_acted"] == ["node3 equivocate"], row  # one mode acted and was caught
    slashes = [{"validator": PRODUCERS[1], "number": 7, "reason": "silent producer"},
               {"validator": PRODUCERS[3], "number": 9, "reason": "equivocation at height 8"}]
    row = evidence(NODES, dict(enumerate(PRODUCERS)), [0, 1, 2], modes, caught, sent, slashes)
    assert row["ok"] and row["honest_silent_slashes"] == 1 and "slashed for equivocation" in row["evidence"], row
    row = evidence(NODES, dict(enumerate(PRODUCERS)), [0, 1, 2], modes, caught, sent,
                   [{"validator": PRODUCERS[2], "number": 9, "reason": "equivocation at height 8"}])
    assert not row["ok"] and "node2 slashed at block 9: equivocation" in row["evidence"]
    row = evidence(NODES, dict(enumerate(PRODUCERS)), [0, 1, 2, 3], {},
                   [report(), report(), report([], [PRODUCERS[0]]), report()], {})
    assert not row["ok"] and "node2 saw node0 equivocate" in row["evidence"]


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["poa", "pow", "poeg", "posoc", "poa-netns"])
def test_the_shipped_manifest_runs_with_every_invariant_holding(engine, tmp_path):
    if engine.endswith("-netns") and (reason := why_not()):
        pytest.skip(reason)
    result = subprocess.run([sys.executable, "-m", "cli.main", "testnet", "run", str(ROOT / "testnets" / f"{engine}.toml"),
                             "--dir", str(tmp_path / "net"), "--json"], capture_output=True, text=True, timeout=300)
    assert result.stdout, result.stderr[-3000:]
    report = json.loads(result.stdout)
    rows = {row["name"]: row for row in report["invariants"]}
    assert set(rows) - {"full disk"} == {"safety", "acknowledged", "nonces", "conservation", "market", "liveness",
                                         "evidence"}
    assert ("full disk" in rows) == engine.endswith("-netns")  # its manifest fills a disk
    assert all(row["ok"] for row in rows.values()), checker_text(report)
    assert result.returncode == 0
    assert report["load"]["acknowledged"] > 50 and rows["acknowledged"]["lost"] == 0
    actions = [p["action"] for p in report["perturbations"]]
    assert actions[0].startswith("kill ") and "restart " + actions[0].split()[1] in actions
    assert "caught for" in rows["evidence"]["evidence"] and rows["evidence"]["held_against_honest"] == 0
    history = [json.loads(line) for line in (tmp_path / "net" / "history.jsonl").read_text().splitlines()]
    assert {op["op"] for op in history} >= {"submit", "ack", "receipt", "perturb"}
    assert {op.get("kind") for op in history if op["op"] == "submit"} >= {"transfer", "reading", "mint", "bid", "ask"}
    assert "cleared" in rows["market"]["evidence"]


def checker_text(report: dict) -> str:
    return table(report["invariants"]) + "\n" + json.dumps(report["perturbations"])


class CountingNet:
    """A stand-in for the localnet: one byzantine node (a `sleep` process to kill) whose
    harness_status counts what it sent since it last started."""

    def __init__(self, process) -> None:
        self.nodes = [{"pid": process.pid}]
        self.counts = {"equivocate": 2}

    def rpc(self, index: int, timeout: float):
        def call(method, *params):
            return {"sent": dict(self.counts)} if method == "harness_status" else "0x1"
        return call


def test_what_a_byzantine_node_sent_is_kept_across_its_restart(tmp_path):
    """A restart zeroes a node's own counters; the evidence row must still see its earlier modes."""
    process = subprocess.Popen(["sleep", "60"])
    net = CountingNet(process)
    network = Network(net, History(tmp_path / "history.jsonl"), lambda line: None, byzantine=(0,))
    network.apply(Perturbation(at=1, action="kill", nodes=(0,)), 1.0)
    assert process.wait(timeout=10) == -9
    net.counts = {"withhold": 1}  # the restarted node counts afresh
    assert network.sent(0) == {"equivocate": 2, "withhold": 1}


class TipNet:
    """A stand-in localnet whose nodes' heads are read from `tips`, one list of hashes per node,
    a node moving to its next hash each time it is asked."""

    def __init__(self, tips) -> None:
        self.nodes = [{"pid": 0} for _ in tips]
        self.tips = [list(t) for t in tips]

    def rpc(self, index: int, timeout: float):
        def call(method, *params):
            tips = self.tips[index]
            return {"hash": tips.pop(0) if len(tips) > 1 else tips[0]}
        return call


def test_the_checks_wait_for_the_block_sealed_a_moment_ago_to_reach_every_honest_node(tmp_path):
    """The producer of the newest block holds it a moment before the others do; checked in that
    moment, its receipts looked lost on them (a CI run: "node1 lacks 17")."""
    history = History(tmp_path / "history.jsonl")
    net = TipNet([["0x35"], ["0x34", "0x34", "0x35"], ["0x34", "0x35"], ["0xbad"]])
    assert _converge(Network(net, history, lambda line: None, byzantine=(3,)), seconds=5)
    assert net.tips[1] == ["0x35"]  # it was asked until it had the block
    net = TipNet([["0x35"], ["0x34"]])
    assert not _converge(Network(net, history, lambda line: None), seconds=0.5)


def test_a_localnet_with_followers_lists_only_its_producers_in_genesis(tmp_path):
    from cli.localnet import prepare_localnet
    from genesis.config import Genesis

    datadirs = prepare_localnet(tmp_path, 3, 1, producers=[0, 2])
    assert [d.signer_key_file.exists() for d in datadirs] == [True, False, True]
    genesis = Genesis.load(tmp_path / "genesis.json")
    assert len(genesis.engine_params["signers"]) == 2 and len(genesis.nodes) == 3  # every node admitted
    result = subprocess.run([sys.executable, "-m", "cli.main", "localnet", "--nodes", "3", "--producers", "0,3",
                             "--dir", str(tmp_path / "other")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "--producers must name distinct nodes among 0..2" in result.stderr


class RestartingNet:
    """A stand-in localnet that records which peers each restart was given."""

    def __init__(self, count: int) -> None:
        self.nodes = [{"pid": 0, "p2p": f"/ip4/127.0.0.1/tcp/{4000 + i}/p2p/peer{i}"} for i in range(count)]
        self.restarts = []

    def restart(self, index, peers=None):
        self.restarts.append((index, peers))

    def rpc(self, index, timeout):
        return lambda method, *params: "0x1"


def test_a_node_restarted_during_a_loopback_partition_dials_only_its_own_group(tmp_path):
    net = RestartingNet(5)
    network = Network(net, History(tmp_path / "history.jsonl"), lambda line: None)
    network.state = {4: "killed"}
    network.apply(Perturbation(at=1, action="partition", groups=((0, 1, 2), (3, 4))), 1.0)
    network.apply(Perturbation(at=2, action="restart", nodes=(4,)), 2.0)
    network.apply(Perturbation(at=3, action="heal"), 3.0)
    network.state = {4: "killed"}
    network.apply(Perturbation(at=4, action="restart", nodes=(4,)), 4.0)
    assert net.restarts == [(4, [3]), (4, None)]  # healed: every node again
