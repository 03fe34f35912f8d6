"""Shared fixtures: real `gridnode start` processes and web3.py clients, used as a wallet would."""
from __future__ import annotations

from pathlib import Path

import pytest
from helpers import NodeProcess
from web3 import Web3


@pytest.hookimpl(wrapper=True)  # groups before pytest-xdist reads them; the order after pytest's own
def pytest_collection_modifyitems(items):
    """The suite runs on two workers (`-n 2 --dist loadgroup --no-loadscope-reorder`,
    pyproject.toml). The multi-node suites (marked slow, not few_nodes) run one after another on
    one worker, so no two networks of processes compete for the two cores, and they come first,
    so the other worker takes the rest meanwhile instead of leaving them alone at the end; every
    other module stays on one worker, so its module-scoped nodes start once."""
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    yield
    items.sort(key=lambda item: (_group(item) != "multi-node", item.get_closest_marker("slow") is None))  # stable


def _group(item) -> str:
    if item.get_closest_marker("slow") and not item.get_closest_marker("few_nodes"):
        return "multi-node"
    return item.nodeid.split("::")[0]


def pytest_xdist_node_collection_finished(node, ids):
    """A worker whose items lost their group would split a module's shared node across workers,
    and its tests would fail on each other's missing state: refuse to run instead."""
    ungrouped = [nodeid for nodeid in ids if "@" not in nodeid]
    if node.config.getvalue("dist") == "loadgroup" and ungrouped:
        raise pytest.UsageError(f"pytest-xdist did not apply the xdist_group marks (first: {ungrouped[0]}); "
                                "check the pytest and pytest-xdist pins in pyproject.toml")


@pytest.fixture
def node_factory(tmp_path):
    started: list[NodeProcess] = []

    def make(datadir: Path | None = None, *extra_args: str) -> NodeProcess:
        node = NodeProcess(datadir or tmp_path / f"node{len(started)}", tuple(extra_args)).start()
        started.append(node)
        return node

    yield make
    for node in started:
        if node.alive():
            node.kill()


@pytest.fixture(scope="module", params=["poa", "pow", "poeg", "posoc"])
def devnet(request, tmp_path_factory):
    """One devnet node shared by a module's tests, once under each consensus engine."""
    node = NodeProcess(tmp_path_factory.mktemp(f"devnet-{request.param}"), ("--engine", request.param)).start()
    yield node
    if node.alive():
        assert node.stop() == 0, "node did not stop cleanly on SIGTERM"


@pytest.fixture(scope="module")
def w3(devnet) -> Web3:
    return devnet.web3()


@pytest.fixture(scope="module")
def registry(w3):
    info = w3.provider.make_request("grid_contracts", [])["result"]["Registry"]
    return w3.eth.contract(address=info["address"], abi=info["abi"])
