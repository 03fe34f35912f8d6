"""A testnet manifest (TOML): the network, its load, a timeline of perturbations and the
invariants to check afterwards, in the manner of CometBFT's e2e manifests.

    engine = "poa"            # poa | pow
    nodes = 4
    producers = [0, 1, 2, 3]  # the nodes that seal (signers, validators, miners; default all): the
                              #   others are followers with no signer key (byzantine only in lying-sync)
    block_time = 1            # seconds
    duration = 45             # seconds of load; the timeline lies inside it
    seed = 1                  # the load's order and amounts
    hashrates = [50000, …]    # pow: one cap per producer (hashes/s)
    topology = "loopback"     # loopback | netns (each node its own host on a bridge; root, ip, nft)
    disk = 0                  # MiB: each node's chain store on a disk of that size (tmpfs; root), for fill

    [load]
    rate = 4                  # transfers per second, all senders together
    senders = 4               # devnet accounts #1..#senders send, to one another
    market = 0.25             # share of the sends that are double-auction orders (calls.py); 0 none

    [[perturb]]
    at = 8                    # seconds after the load starts
    action = "kill"           # kill | stop | wipe | restart | pause | resume | partition | heal
    nodes = [3]               #   | skew | loss | byzantine | honest; partition: groups = [[0, 1], [2, 3]]
                              # partition: admin RPC drops the links on loopback, nftables under netns
                              # loss: percent = 20 (netns: that share of the node's packets to and
                              #   from other nodes dropped at random by nftables; 0 ends it)
                              # fill: the node's disk full to the last byte (it must stop cleanly);
                              #   free: room again, and a node that stopped is started again
                              # wipe: delete a killed or stopped node's chain (restart resyncs it)
                              # restart during a partition: on loopback the node dials only its
                              #   own group (under netns the firewall keeps it there anyway)
                              # skew: seconds = 30 (the node's clock offset; 0 puts it right)
                              # byzantine: mode = "equivocate" (node/byzantine.py's modes); honest ends it

    [check]
    liveness = 20             # seconds after the last perturbation for every node to reach the common head
    confirmations = 2         # heights below the lowest head left out of the safety comparison

Every field is checked here, with the reason, before anything starts."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from node.byzantine import MODES

ENGINES = ("poa", "pow", "poeg", "posoc")
ACTIONS = ("kill", "stop", "wipe", "restart", "pause", "resume", "partition", "heal", "skew", "loss", "fill", "free",
           "byzantine", "honest")
TOPOLOGIES = ("loopback", "netns")
DOWN_ACTIONS = {"kill": "killed", "stop": "stopped", "pause": "paused", "fill": "out of disk"}
ENGINE_MODES = {"poa": MODES, "pow": tuple(m for m in MODES if m not in ("wrong-turn", "withhold")),
                "poeg": MODES, "posoc": MODES}
"""Byzantine modes an engine's honest nodes can tell: PoW has no turns, so a wrong turn is no
fault and a withholding miner looks like a slow one."""
MAX_NODES = 8
MAX_DURATION = 24 * 3600


class ManifestError(ValueError):
    """A manifest that cannot run, with the field and the reason."""


@dataclass(frozen=True)
class Perturbation:
    at: float
    action: str
    nodes: tuple[int, ...] = ()
    groups: tuple[tuple[int, ...], ...] = ()
    seconds: float = 0.0
    """skew: the clock offset to set."""
    mode: str = ""
    """byzantine: the mode to switch on."""
    percent: int = 0
    """loss: the share of packets dropped."""

    def describe(self) -> str:
        who = ",".join(f"node{i}" for i in self.nodes)
        if self.action == "skew":
            return f"skew {who}'s clock to {self.seconds:+g} s"
        if self.action == "byzantine":
            return f"byzantine {who}: {self.mode}"
        if self.action == "loss":
            return f"{who} loses {self.percent} % of its packets" if self.percent else f"{who}'s packet loss ends"
        if self.action == "partition":
            return "partition " + " | ".join(",".join(f"node{i}" for i in g) for g in self.groups)
        if self.action == "heal":
            return "heal the partition"
        if self.action == "wipe":
            return f"wipe {who}'s chain"
        return f"{self.action} {who}"


@dataclass(frozen=True)
class Manifest:
    name: str
    engine: str
    nodes: int
    block_time: int
    duration: float
    seed: int
    rate: float
    senders: int
    perturbations: tuple[Perturbation, ...]
    liveness: float = 20.0
    confirmations: int = 2
    hashrates: tuple[int, ...] = ()
    """PoW: one cap per producer."""
    producers: tuple[int, ...] = ()
    """The nodes that seal, in order; the others follow (no signer key)."""
    topology: str = "loopback"
    disk: int = 0
    """MiB of disk for each node's chain store (0: the machine's disk, no fill)."""
    market: float = 0.0
    """The share of the load's sends that are market calls (calls.py)."""
    source: Path | None = field(default=None, compare=False)

    @property
    def byzantine(self) -> tuple[int, ...]:
        """Nodes the timeline ever makes byzantine: left out of the honest nodes' invariants."""
        return tuple(sorted({i for p in self.perturbations if p.action == "byzantine" for i in p.nodes}))

    @property
    def healed_at(self) -> float:
        """When the last perturbation is applied (0 with none): liveness is measured from here."""
        return max((p.at for p in self.perturbations), default=0.0)


def load(path: Path) -> Manifest:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as error:
        raise ManifestError(f"{path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ManifestError(f"{path}: not TOML: {error}") from None
    return parse(data, name=Path(path).stem, source=Path(path))


def parse(data: dict, name: str = "testnet", source: Path | None = None) -> Manifest:
    unknown = set(data) - {"name", "engine", "nodes", "producers", "block_time", "duration", "seed", "hashrates",
                           "topology", "disk", "load", "perturb", "check"}
    if unknown:
        raise ManifestError(f"unknown field(s): {', '.join(sorted(unknown))}")
    engine = data.get("engine", "poa")
    if engine not in ENGINES:
        raise ManifestError(f"engine: one of {', '.join(ENGINES)}, not {engine!r}")
    nodes = _int(data, "nodes", 4, 1, MAX_NODES)
    block_time = _int(data, "block_time", 2 if engine == "pow" else 1, 1, 60)
    duration = _number(data, "duration", 45, 5, MAX_DURATION)
    producers = data.get("producers", list(range(nodes)))
    if not isinstance(producers, list) or not producers:
        raise ManifestError("producers: a non-empty list of node indices")
    producers = sorted(_index(i, "producers", nodes) for i in producers)
    if len(set(producers)) != len(producers):
        raise ManifestError("producers: a node named twice")
    hashrates = data.get("hashrates", [50_000] * len(producers) if engine == "pow" else [])
    if engine != "pow" and hashrates:
        raise ManifestError("hashrates: only for engine = \"pow\"")
    if engine == "pow" and (not isinstance(hashrates, list) or len(hashrates) != len(producers)
                            or not all(isinstance(h, int) and h >= 1 for h in hashrates)):
        raise ManifestError(f"hashrates: {len(producers)} positive integers, one per producer")
    topology = data.get("topology", "loopback")
    if topology not in TOPOLOGIES:
        raise ManifestError(f"topology: one of {', '.join(TOPOLOGIES)}, not {topology!r}")
    disk = _int(data, "disk", 0, 0, 4096)
    if disk and disk < 16:
        raise ManifestError("disk: 0 (none) or at least 16 MiB, room for a chain store to start")
    load_section = _section(data, "load", {"rate", "senders", "market"})
    check = _section(data, "check", {"liveness", "confirmations"})
    perturbations = tuple(_perturbation(entry, k, nodes, duration, engine, topology, disk, producers)
                          for k, entry in enumerate(data.get("perturb", [])))
    if list(perturbations) != sorted(perturbations, key=lambda p: p.at):
        raise ManifestError("perturb: entries in the order of their `at`")
    _check_timeline(perturbations, nodes)
    return Manifest(name=str(data.get("name", name)), engine=engine, nodes=nodes, block_time=block_time,
                    duration=duration, seed=_int(data, "seed", 0, 0, 2**63 - 1),
                    rate=_number(load_section, "load.rate", 4, 0, 1_000), senders=_int(load_section, "load.senders", 4, 1, 19),
                    perturbations=perturbations, liveness=_number(check, "check.liveness", 20, 1, 600),
                    confirmations=_int(check, "check.confirmations", 2, 0, 1_024), hashrates=tuple(hashrates),
                    producers=tuple(producers), topology=topology, disk=disk,
                    market=_number(load_section, "load.market", 0, 0, 1), source=source)


FOLLOWER_MODES = ("lying-sync",)
"""What a follower can do wrong: every other mode seals or signs, and it holds no signer key."""


def _perturbation(entry, k: int, nodes: int, duration: float, engine: str, topology: str, disk: int,
                  producers: list[int]) -> Perturbation:
    where = f"perturb[{k}]"
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: a table")
    unknown = set(entry) - {"at", "action", "nodes", "groups", "seconds", "mode", "percent"}
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    action = entry.get("action")
    if action not in ACTIONS:
        raise ManifestError(f"{where}.action: one of {', '.join(ACTIONS)}, not {action!r}")
    at = _number(entry, f"{where}.at", None, 0, duration)
    if action == "partition":
        groups = entry.get("groups")
        if not isinstance(groups, list) or len(groups) < 2 or not all(isinstance(g, list) and g for g in groups):
            raise ManifestError(f"{where}.groups: two or more non-empty lists of node indices")
        flat = [_index(i, f"{where}.groups", nodes) for g in groups for i in g]
        if len(set(flat)) != len(flat):
            raise ManifestError(f"{where}.groups: a node in two groups")
        return Perturbation(at, action, groups=tuple(tuple(g) for g in groups))
    if action == "heal":
        return Perturbation(at, action)
    chosen = entry.get("nodes")
    if not isinstance(chosen, list) or not chosen:
        raise ManifestError(f"{where}.nodes: a non-empty list of node indices")
    indices = tuple(_index(i, f"{where}.nodes", nodes) for i in chosen)
    if action == "skew":
        return Perturbation(at, action, nodes=indices, seconds=_number(entry, f"{where}.seconds", None, -3_600, 3_600))
    if action in ("fill", "free") and not disk:
        raise ManifestError(f"{where}: {action} needs disk = MiB (each node's chain store on a disk of its own)")
    if action == "loss":
        if topology != "netns":
            raise ManifestError(f"{where}: packet loss needs topology = \"netns\" (nftables on each node's host)")
        return Perturbation(at, action, nodes=indices, percent=_int(entry, f"{where}.percent", None, 0, 100))
    if action == "byzantine":
        mode = entry.get("mode")
        if mode not in ENGINE_MODES[engine]:
            raise ManifestError(f"{where}.mode: under {engine} one of {', '.join(ENGINE_MODES[engine])}, not {mode!r}")
        followers = [i for i in indices if i not in producers]
        if followers and mode not in FOLLOWER_MODES:
            raise ManifestError(f"{where}: node{followers[0]} is a follower (no signer key): its one mode is "
                                f"{', '.join(FOLLOWER_MODES)}")
        return Perturbation(at, action, nodes=indices, mode=mode)
    if set(entry) & {"seconds", "mode", "percent"}:
        raise ManifestError(f"{where}: seconds is for skew, mode for byzantine, percent for loss")
    return Perturbation(at, action, nodes=indices)


def _check_timeline(perturbations: tuple[Perturbation, ...], nodes: int) -> None:
    """Each action must make sense at its point: wipe and restart what was killed or stopped,
    resume what was paused, heal a partition, end a byzantine mode, put a skewed clock right, end
    a packet loss; a byzantine or
    skewed node is not restarted meanwhile (a restart would end it unseen); and by the end every
    node is back, honest, on time, and the network whole."""
    state: dict[int, str] = {}
    altered: dict[int, str] = {}
    """node → "byzantine" | "skewed"."""
    losing: set[int] = set()
    partitioned = False
    for k, p in enumerate(perturbations):
        where = f"perturb[{k}] ({p.describe()})"
        for i in p.nodes:
            if p.action in DOWN_ACTIONS and i in state:
                raise ManifestError(f"{where}: node{i} is already {state[i]}")
            if p.action in ("kill", "stop", "fill") and i in altered:
                raise ManifestError(f"{where}: node{i} is {altered[i]}: end that first")
            if p.action == "free" and state.get(i) != "out of disk":
                raise ManifestError(f"{where}: node{i}'s disk is not full")
            if p.action in ("restart", "wipe") and state.get(i) not in ("killed", "stopped"):
                raise ManifestError(f"{where}: node{i} is not killed or stopped")
            if p.action == "resume" and state.get(i) != "paused":
                raise ManifestError(f"{where}: node{i} is not paused")
            if p.action in ("skew", "byzantine", "honest") and i in state:
                raise ManifestError(f"{where}: node{i} is {state[i]}")
            if p.action == "byzantine" and i in altered:
                raise ManifestError(f"{where}: node{i} is already {altered[i]}")
            if p.action == "honest" and altered.get(i) != "byzantine":
                raise ManifestError(f"{where}: node{i} is not byzantine")
            if p.action == "skew" and altered.get(i, "skewed") != "skewed":
                raise ManifestError(f"{where}: node{i} is {altered[i]}")
        for i in p.nodes:
            if p.action == "loss":
                (losing.add if p.percent else losing.discard)(i)
            if p.action in DOWN_ACTIONS:
                state[i] = DOWN_ACTIONS[p.action]
            elif p.action in ("restart", "resume", "free"):
                del state[i]
            elif p.action == "byzantine" or (p.action == "skew" and p.seconds):
                altered[i] = "byzantine" if p.action == "byzantine" else "skewed"
            elif p.action in ("honest", "skew"):
                altered.pop(i, None)
        if p.action == "partition":
            if partitioned:
                raise ManifestError(f"{where}: heal the partition before another")
            partitioned = True
        if p.action == "heal":
            if not partitioned:
                raise ManifestError(f"{where}: no partition to heal")
            partitioned = False
    left = ([f"node{i} {s}" for i, s in sorted({**altered, **state}.items())] + (["the partition"] if partitioned else [])
            + [f"node{i} losing packets" for i in sorted(losing)])
    if left:
        raise ManifestError(f"the timeline must end whole (liveness is checked after it): still {', '.join(left)}")
    if len({i for p in perturbations if p.action == "byzantine" for i in p.nodes}) * 2 >= nodes > 1:
        raise ManifestError("byzantine nodes must stay a minority: the honest ones are what the checks judge")


def _section(data: dict, name: str, allowed: set[str]) -> dict:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ManifestError(f"{name}: a table")
    unknown = set(section) - allowed
    if unknown:
        raise ManifestError(f"{name}: unknown field(s) {', '.join(sorted(unknown))}")
    return section


def _int(data: dict, key: str, default: int, low: int, high: int) -> int:
    value = data.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ManifestError(f"{key}: an integer in {low}..{high}, not {value!r}")
    return value


def _number(data: dict, key: str, default, low: float, high: float) -> float:
    value = data.get(key.rsplit(".", 1)[-1], default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        raise ManifestError(f"{key}: a number in {low:g}..{high:g}, not {value!r}")
    return float(value)


def _index(value, where: str, nodes: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < nodes:
        raise ManifestError(f"{where}: node indices are 0..{nodes - 1}, not {value!r}")
    return value


SOAK_FAULTS = ("kill", "stop", "pause", "partition", "skew", "byzantine")
SOAK_FAULT_SECONDS = (4.0, 12.0)
"""How long a soak fault lasts before it is undone (restart, resume, heal, clock put right,
honest again), drawn uniformly."""
SOAK_GAP_SECONDS = (3.0, 10.0)
"""Quiet time between one fault's end and the next fault, drawn uniformly."""
SOAK_SKEW_SECONDS = (-40.0, 40.0)
SOAK_LOSS_PERCENT = (10, 40)
SOAK_MARKET = 0.25
"""A soak's load: a quarter of the sends are double-auction orders."""
"""Under netns, a soak's packet loss on one node, drawn uniformly."""
SOAK_MODES = {"poa": ("equivocate", "withhold"), "pow": ("equivocate",),
              "poeg": ("equivocate", "withhold"), "posoc": ("equivocate", "withhold")}
"""Byzantine modes a soak repeats: ones the honest nodes catch without banning the node, so it
can misbehave again later (under PoEG and PoSOC they act only in slots the node is drawn for,
and the first one caught slashes its whole stake, so it is drawn no more: the checker names the
windows that never acted)."""
SOAK_FINAL_MODE = {"poa": "bad-state-root", "pow": "bad-seal", "poeg": "wrong-turn", "posoc": "wrong-turn"}
"""The soak's last fault: a mode that gets the byzantine node banned (for 10 minutes), so no
other mode could be seen after it."""
SOAK_FINAL_SECONDS = 12.0


def soak(engine: str, nodes: int, seconds: float, seed: int, rate: float = 4.0, topology: str = "loopback") -> Manifest:
    """A randomised timeline for `seconds`, reproduced exactly by `seed`: one fault at a time (a
    minority killed, stopped or paused, a partition into two groups, one clock skewed, or the last
    node turned byzantine), each undone after a few seconds, with quiet time between. With three
    or more nodes the last is the byzantine one, and it ends on a mode that bans it. The last
    fault ends by `seconds` − 10 so liveness is measured. Under netns, packet loss on one node
    is a fault too."""
    import random

    if engine not in ENGINES:
        raise ManifestError(f"engine: one of {', '.join(ENGINES)}, not {engine!r}")
    if not 2 <= nodes <= MAX_NODES:
        raise ManifestError(f"a soak needs 2..{MAX_NODES} nodes")
    if not 60 <= seconds <= MAX_DURATION:
        raise ManifestError(f"a soak runs 60..{MAX_DURATION} seconds")
    draw = random.Random(seed)
    if topology not in TOPOLOGIES:
        raise ManifestError(f"topology: one of {', '.join(TOPOLOGIES)}, not {topology!r}")
    faults = SOAK_FAULTS + (("loss",) if topology == "netns" else ())
    faults = faults if nodes >= 3 else tuple(f for f in faults if f != "byzantine")
    villain = nodes - 1
    end = seconds - 10 - (SOAK_FINAL_SECONDS + SOAK_GAP_SECONDS[0] if "byzantine" in faults else 0)
    perturbations: list[Perturbation] = []
    t = draw.uniform(*SOAK_GAP_SECONDS)
    while True:
        length = draw.uniform(*SOAK_FAULT_SECONDS)
        if t + length > end:
            break
        fault = draw.choice(faults)
        start, stop = round(t, 2), round(t + length, 2)
        if fault == "partition":
            order = draw.sample(range(nodes), nodes)
            cut = draw.randint(1, nodes - 1)
            groups = (tuple(sorted(order[:cut])), tuple(sorted(order[cut:])))
            perturbations += [Perturbation(start, "partition", groups=groups), Perturbation(stop, "heal")]
        elif fault == "skew":
            node = (draw.randrange(nodes),)
            perturbations += [Perturbation(start, "skew", nodes=node, seconds=round(draw.uniform(*SOAK_SKEW_SECONDS), 1)),
                              Perturbation(stop, "skew", nodes=node, seconds=0.0)]
        elif fault == "loss":
            node = (draw.randrange(nodes),)
            perturbations += [Perturbation(start, "loss", nodes=node, percent=draw.randint(*SOAK_LOSS_PERCENT)),
                              Perturbation(stop, "loss", nodes=node, percent=0)]
        elif fault == "byzantine":
            perturbations += [Perturbation(start, "byzantine", nodes=(villain,), mode=draw.choice(SOAK_MODES[engine])),
                              Perturbation(stop, "honest", nodes=(villain,))]
        else:
            chosen = tuple(sorted(draw.sample(range(nodes), draw.randint(1, (nodes - 1) // 2 or 1))))
            undo = "resume" if fault == "pause" else "restart"
            perturbations += [Perturbation(start, fault, nodes=chosen), Perturbation(stop, undo, nodes=chosen)]
        t += length + draw.uniform(*SOAK_GAP_SECONDS)
    if "byzantine" in faults:  # every fault drawn ended by `end`
        perturbations += [Perturbation(round(end, 2), "byzantine", nodes=(villain,), mode=SOAK_FINAL_MODE[engine]),
                          Perturbation(round(end + SOAK_FINAL_SECONDS, 2), "honest", nodes=(villain,))]
    manifest = Manifest(name=f"soak-{engine}-{seed}", engine=engine, nodes=nodes, block_time=2 if engine == "pow" else 1,
                        duration=float(seconds), seed=seed, rate=rate, senders=min(4, 19),
                        perturbations=tuple(perturbations), hashrates=(50_000,) * nodes if engine == "pow" else (),
                        producers=tuple(range(nodes)), topology=topology, market=SOAK_MARKET)
    _check_timeline(manifest.perturbations, nodes)
    return manifest
