"""Hosts on one machine (cli/netns.py): each namespace reaches the others and this machine over
the bridge; a partition drops another host's packets both ways; packet loss drops the given
share of what goes between hosts and spares this machine's traffic. Reachability is read from
a TCP connect to a closed port: refused means the packets went through, a timeout that they
were dropped. The 4-node network across namespaces is `testnets/poa-netns.toml`, run in
tests/cli/test_testnet.py.

Needs root, `ip` and `nft`; skipped with the reason otherwise."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from cli.netns import Hosts, HostsError, why_not

PROBE = """
import socket, sys
for _ in range(int(sys.argv[3])):
    try:
        socket.create_connection((sys.argv[1], 9), timeout=float(sys.argv[2])).close()
    except ConnectionRefusedError:
        print("reached")
    except OSError:
        print("dropped")
"""


@pytest.fixture
def hosts():
    reason = why_not()
    if reason:
        pytest.skip(reason)
    made = Hosts.create("gnt", 3)
    yield made
    made.delete()


def reach(hosts: Hosts, source: int | None, target: str, timeout: float = 1.0, tries: int = 1) -> str:
    """From host `source` (None: this machine), whether connects to `target` get an answer (one
    line per try)."""
    prefix = hosts.prefix(source) if source is not None else []
    done = subprocess.run([*prefix, sys.executable, "-c", PROBE, target, str(timeout), str(tries)],
                          capture_output=True, text=True, timeout=60)
    return done.stdout.strip()


def test_every_host_reaches_the_others_and_this_machine_reaches_every_host(hosts):
    assert [reach(hosts, 0, hosts.address(i)) for i in (1, 2)] == ["reached", "reached"]
    assert reach(hosts, 2, hosts.hub) == "reached"
    assert [reach(hosts, None, hosts.address(i)) for i in range(3)] == ["reached"] * 3


def test_a_partition_drops_the_other_side_both_ways_until_healed(hosts):
    hosts.partition(0, [1])
    assert reach(hosts, 0, hosts.address(1)) == "dropped"
    assert reach(hosts, 1, hosts.address(0)) == "dropped"       # only host 0 has rules: its input drops
    assert reach(hosts, 0, hosts.address(2)) == "reached"
    assert reach(hosts, None, hosts.address(0)) == "reached"    # the harness still reaches it
    hosts.partition(0, [2])                                      # a new partition replaces the old
    assert (reach(hosts, 0, hosts.address(1)), reach(hosts, 0, hosts.address(2))) == ("reached", "dropped")
    hosts.heal(0)
    hosts.heal(0)                                                # healing twice is harmless
    assert reach(hosts, 0, hosts.address(2)) == "reached"


def test_packet_loss_drops_that_share_between_hosts_and_spares_this_machine(hosts):
    hosts.loss(1, 100)
    assert reach(hosts, 0, hosts.address(1)) == "dropped"
    assert reach(hosts, 1, hosts.address(2)) == "dropped"
    assert reach(hosts, None, hosts.address(1)) == "reached"
    hosts.loss(1, 50)  # replaces the 100 %: a connect (a SYN in, a RST out) gets through 1 time in 4
    outcomes = reach(hosts, 0, hosts.address(1), timeout=0.15, tries=60).split()
    assert len(outcomes) == 60 and 0 < outcomes.count("reached") < 60, outcomes
    hosts.loss(1, 0)
    assert reach(hosts, 0, hosts.address(1)) == "reached"
    with pytest.raises(HostsError, match="0..100"):
        hosts.loss(1, 101)


def test_hosts_of_a_name_in_use_are_refused_and_names_are_checked(hosts):
    with pytest.raises(HostsError, match="exist"):
        Hosts.create("gnt", 2)
    with pytest.raises(HostsError, match="lowercase"):
        Hosts.create("Bad-Name", 2)
    assert hosts.to_json() == Hosts.from_json(hosts.to_json()).to_json()
    with socket.socket() as probe:  # the hub address is on this machine
        probe.bind((hosts.hub, 0))
