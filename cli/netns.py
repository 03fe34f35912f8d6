"""Hosts on one machine: a network namespace per node on a bridge, so each node has its own
address and its own firewall, and faults are made the way they happen between real hosts: a
partition is nftables rules dropping another host's packets, packet loss is nftables `numgen`
dropping a share of them at random. Needs root, `ip` (iproute2) and `nft` (nftables).

Node i lives in namespace NAME<i> at SUBNET.(i+1) behind veth NAMEv<i>; the bridge NAMEbr
holds SUBNET.254, so this machine (the harness, a wallet) reaches every node. SUBNET is the
first 10.231.X.0/24 with no address on this machine, chosen when the hosts are made."""
from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
from dataclasses import dataclass

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,7}$")
"""Short enough that NAMEbr and NAMEv<i> fit a 15-byte interface name."""
MAX_HOSTS = 32
SUBNET_BASE = "10.231"
PARTITION_TABLE = "gridnode_partition"
LOSS_TABLE = "gridnode_loss"


class HostsError(RuntimeError):
    """Namespaces that cannot be made or changed, with the command and its error."""


def why_not() -> str | None:
    """Why network namespaces cannot be used here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"network namespaces need the {tool} command (apt-get install {'iproute2' if tool == 'ip' else 'nftables'})"
    return None


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise HostsError(f"{' '.join(args)}: {done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


@dataclass(frozen=True)
class Hosts:
    name: str
    count: int
    subnet: str
    """The first three octets, e.g. 10.231.1."""

    @classmethod
    def create(cls, name: str, count: int) -> Hosts:
        """Make the bridge and `count` namespaces; refuses if hosts of that name exist."""
        reason = why_not()
        if reason:
            raise HostsError(reason)
        if not NAME_PATTERN.match(name):
            raise HostsError(f"hosts name {name!r}: a lowercase letter then up to 7 letters or digits")
        if not 1 <= count <= MAX_HOSTS:
            raise HostsError(f"1..{MAX_HOSTS} hosts, not {count}")
        if subprocess.run(["ip", "link", "show", "dev", f"{name}br"], capture_output=True).returncode == 0:
            raise HostsError(f"hosts {name!r} exist (bridge {name}br): another localnet runs, or remove them with "
                             f"`ip link del {name}br` and `ip netns del {name}<i>`")
        hosts = cls(name, count, _free_subnet())
        try:
            _run("ip", "link", "add", hosts.bridge, "type", "bridge")
            _run("ip", "addr", "add", f"{hosts.hub}/24", "dev", hosts.bridge)
            _run("ip", "link", "set", hosts.bridge, "up")
            for i in range(count):
                namespace = hosts.namespace(i)
                _run("ip", "netns", "add", namespace)
                _run("ip", "link", "add", f"{name}v{i}", "type", "veth", "peer", "name", "eth0", "netns", namespace)
                _run("ip", "link", "set", f"{name}v{i}", "master", hosts.bridge, "up")
                hosts.run(i, "ip", "addr", "add", f"{hosts.address(i)}/24", "dev", "eth0")
                hosts.run(i, "ip", "link", "set", "eth0", "up")
                hosts.run(i, "ip", "link", "set", "lo", "up")
        except HostsError:
            hosts.delete()
            raise
        return hosts

    @property
    def bridge(self) -> str:
        return f"{self.name}br"

    def namespace(self, index: int) -> str:
        return f"{self.name}{index}"

    def address(self, index: int) -> str:
        return f"{self.subnet}.{index + 1}"

    def prefix(self, index: int) -> list[str]:
        """What runs a command on host `index` (`ip netns exec` execs it: the pid is the command's)."""
        return ["ip", "netns", "exec", self.namespace(index)]

    def run(self, index: int, *command: str) -> str:
        return _run(*self.prefix(index), *command)

    def partition(self, index: int, others: list[int]) -> None:
        """Host `index` drops every packet from and to `others` (replacing any earlier partition)."""
        self.heal(index)
        if not others:
            return
        blocked = ", ".join(self.address(o) for o in sorted(others))
        self._table(index, PARTITION_TABLE, f"ip saddr {{ {blocked} }} drop", f"ip daddr {{ {blocked} }} drop")

    def heal(self, index: int) -> None:
        self._drop_table(index, PARTITION_TABLE)

    @property
    def hub(self) -> str:
        """This machine's address on the bridge."""
        return f"{self.subnet}.254"

    def loss(self, index: int, percent: int) -> None:
        """Host `index` drops `percent` % of the packets it receives from and sends to the other
        hosts (so about 1 − (1 − p)² of a round trip), at random; 0 ends the loss. Traffic with
        this machine (the harness's RPC, a wallet) is spared: the loss is between nodes."""
        if not 0 <= percent <= 100:
            raise HostsError(f"packet loss is 0..100 %, not {percent}")
        self._drop_table(index, LOSS_TABLE)
        if percent:
            share = f"numgen random mod 100 < {percent} " if percent < 100 else ""  # numgen's values are 0..99
            self._table(index, LOSS_TABLE, f'iifname "eth0" ip saddr != {self.hub} {share}drop',
                        f'oifname "eth0" ip daddr != {self.hub} {share}drop')

    def _table(self, index: int, table: str, inbound: str, outbound: str) -> None:
        script = (f"table inet {table} {{\n"
                  f"  chain in {{ type filter hook input priority 0; {inbound}; }}\n"
                  f"  chain out {{ type filter hook output priority 0; {outbound}; }}\n}}\n")
        done = subprocess.run([*self.prefix(index), "nft", "-f", "-"], input=script, capture_output=True, text=True)
        if done.returncode != 0:
            raise HostsError(f"nft in {self.namespace(index)}: {done.stderr.strip()}")

    def _drop_table(self, index: int, table: str) -> None:
        if f"table inet {table}" in self.run(index, "nft", "list", "tables"):
            self.run(index, "nft", "delete", "table", "inet", table)

    def delete(self) -> None:
        """Remove the namespaces (their veths go with them) and the bridge; what is already gone is skipped."""
        for i in range(self.count):
            subprocess.run(["ip", "netns", "del", self.namespace(i)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def to_json(self) -> dict:
        return {"name": self.name, "count": self.count, "subnet": self.subnet}

    @classmethod
    def from_json(cls, data: dict) -> Hosts:
        return cls(data["name"], data["count"], data["subnet"])


def _free_subnet() -> str:
    """The first 10.231.X.0/24 (X in 1..254) that no interface here has an address in."""
    used = set()
    for line in _run("ip", "-o", "-4", "addr", "show").splitlines():
        fields = line.split()
        if "inet" in fields:
            used.add(ipaddress.ip_interface(fields[fields.index("inet") + 1]).network)
    for x in range(1, 255):
        candidate = ipaddress.ip_network(f"{SUBNET_BASE}.{x}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return f"{SUBNET_BASE}.{x}"
    raise HostsError(f"no free {SUBNET_BASE}.X.0/24 subnet on this machine")
