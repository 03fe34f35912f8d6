"""Market tests import the in-process sandbox and their test contracts from this folder."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402 (after the path set-up above)
from helpers import NodeProcess  # noqa: E402
from wallet import contracts  # noqa: E402


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    """One PoA devnet per module: the market contracts behave the same under either engine,
    so the market tests do not run twice as the root conftest's devnet would."""
    node = NodeProcess(tmp_path_factory.mktemp("market-devnet"), ("--engine", "poa")).start()
    yield node
    if node.alive():
        assert node.stop() == 0, "node did not stop cleanly on SIGTERM"


@pytest.fixture(scope="module")
def market(w3):
    return contracts(w3)



@pytest.fixture(scope="module")
def fiat(market):
    return market["FiatToken"]

@pytest.fixture(scope="module")
def energy(market):
    return market["EnergyToken"]

@pytest.fixture(scope="module")
def meters(market):
    return market["Meters"]

@pytest.fixture(scope="module")
def exchange(market):
    return market["ElecoinExchange"]

@pytest.fixture(scope="module")
def etsc(market):
    return market["ETSC"]

@pytest.fixture(scope="module")
def offers(market):
    return market["Offers"]
