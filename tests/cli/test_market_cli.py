"""`gridnode market …` against a devnet node, as an operator uses it: balances, tokens, the
elecoin exchange, meter readings and the offers' whole round, with readable refusals."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import NodeProcess

from cli.main import main
from cli.market import COMMANDS
from genesis.devnet import dev_accounts

ACCOUNTS = dev_accounts(40)
"""#0 admin (fiat issuer), #1..#19 prosumers, #20..#38 their meter oracles, #39 the edge server."""
ADMIN, SELLER, BUYER, EDGE = ACCOUNTS[0], ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[39]
SELLER_ORACLE, BUYER_ORACLE = ACCOUNTS[20], ACCOUNTS[21]


def key(account) -> str:
    return "0x" + account.private_key.hex()


def address(account) -> str:
    return account.address.to_checksum()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    process = NodeProcess(tmp_path_factory.mktemp("market-cli") / "devnet").start()
    yield process
    if process.alive():
        assert process.stop() == 0


@pytest.fixture
def market(node, capsys):
    """Run `gridnode market ARGS --rpc URL --json` in-process; (exit status, JSON or None, stderr)."""
    def run(*args: str, signer=None) -> tuple[int, dict | None, str]:
        argv = ["--log-level", "warning", "market", *args, "--rpc", node.url, "--json"]
        status = main(argv + (["--key", key(signer)] if signer else []))
        out, err = capsys.readouterr()
        return status, json.loads(out) if status == 0 else None, err
    return run


def balances(market, account) -> dict:
    status, result, err = market("balances", address(account))
    assert status == 0, err
    return result


@pytest.mark.parametrize("action", sorted(COMMANDS))
def test_help_on_every_subcommand(action, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["market", action, "--help"])
    assert exit_.value.code == 0 and "usage: gridnode market " + action in capsys.readouterr().out


def test_contracts_come_from_the_node(market):
    status, listing, _ = market("contracts")
    assert status == 0
    assert listing["FiatToken"]["address"] == "0x6772696400000000000000000000000000000010"
    assert {e["name"] for e in listing["Offers"]["abi"] if e["type"] == "function"} >= {"makeOffer", "allocateEnergy"}


def test_tokens_and_the_elecoin_exchange(market):
    seller_before, buyer_before = balances(market, SELLER), balances(market, BUYER)
    assert seller_before["fiat"] == 1_000_000 and seller_before["elecoin"] > 0  # 10,000.00 GUSD on the devnet

    status, sent, _ = market("transfer", "fiat", address(BUYER), "12.50", signer=SELLER)
    assert status == 0 and [e["event"] for e in sent["events"]] == ["Transfer"]
    assert sent["events"][0] == {"event": "Transfer", "from": address(SELLER), "to": address(BUYER), "value": 1250}
    assert balances(market, BUYER)["fiat"] == buyer_before["fiat"] + 1250

    status, _, err = market("transfer", "fiat", address(BUYER), "1000000", signer=SELLER)
    assert status == 1 and err.strip() == "error: fiat: transfer amount exceeds balance"
    status, _, err = market("mint", "fiat", address(SELLER), "5", signer=SELLER)
    assert status == 1 and "fiat: caller is not an issuer" in err
    status, _, err = market("transfer", "fiat", address(BUYER), "0.001", signer=SELLER)
    assert status == 1 and "at most 2 decimals" in err
    status, minted, _ = market("mint", "fiat", address(SELLER), "5", signer=ADMIN)
    assert status == 0 and minted["amount"] == 500

    status, prices, _ = market("price")
    assert status == 0 and prices["servers"][0]["server"] == address(EDGE)
    assert prices["minPrice"] <= prices["servers"][0]["price"] <= prices["maxPrice"]
    status, _, err = market("price", "15", signer=SELLER)
    assert status == 1 and "exchange: caller is not an edge server" in err
    status, _, err = market("price", "99", signer=EDGE)
    assert status == 1 and "exchange: price outside the bounds" in err
    status, posted, _ = market("price", "15.00", signer=EDGE)
    assert status == 0 and posted["servers"][0]["price"] == 1500

    before = balances(market, SELLER)
    status, bought, _ = market("buy", "2", signer=SELLER)
    assert status == 0 and bought["paid"] == 3000 and bought["server"] == address(EDGE)
    assert "TokenBought" in [e["event"] for e in bought["events"]]
    after = balances(market, SELLER)
    assert after["fiat"] == before["fiat"] - 3000
    assert 0 < after["elecoin"] - before["elecoin"] <= 2 * 10**18  # 2 ELC in, the gas of approve and buy out
    status, _, err = market("buy", "1000000", "--server", address(EDGE), signer=SELLER)
    assert status == 1 and "exchange: purchase exceeds the server's reserve" in err


def test_a_reading_an_offer_and_its_settlement(market, node, capsys):
    status, posted, _ = market("reading", address(SELLER), "--generation", "5000", "--consumption", "1000",
                               "--battery", "200", signer=SELLER_ORACLE)
    assert status == 0 and [e["event"] for e in posted["events"]] == ["ReadingPosted"]
    status, _, err = market("reading", address(SELLER), "--slot", str(posted["slot"]), "--generation", "1",
                            signer=SELLER_ORACLE)
    assert status == 1 and "meters: reading already posted for this slot" in err
    status, shown, _ = market("reading", address(SELLER))
    assert status == 0 and shown["posted"] and shown["generationWh"] == 5000 and shown["slot"] == posted["slot"]
    status, _, err = market("reading", address(SELLER), "--generation", "1", signer=SELLER)
    assert status == 1 and "meters:" in err

    status, minted, _ = market("mint-watts", address(SELLER), signer=SELLER_ORACLE)
    assert status == 0 and minted["wh"] == 5000 and balances(market, SELLER)["energy"] == 5000

    status, _, err = market("offer", "3000", "0.255", signer=SELLER)  # prices are whole cents per kWh
    assert status == 1 and "PRICE: '0.255' is not a non-negative amount with at most 2 decimals" in err
    status, offer, _ = market("offer", "3000", "0.25", "--expires-in", "3600", signer=SELLER)  # 0.25 GUSD/kWh
    assert status == 0 and offer["pricePerKWh"] == 25 and balances(market, SELLER)["energy"] == 2000
    status, listing, _ = market("offers")
    listed = next(o for o in listing["offers"] if o["offerId"] == offer["offerId"])
    assert listed["seller"] == address(SELLER) and listed["remainingWh"] == 3000 and listed["pricePerKWh"] == 25
    assert main(["--log-level", "warning", "market", "offers", "--rpc", node.url]) == 0
    assert f"#{offer['offerId']:<4}      3,000 of 3,000 Wh at 0.25 GUSD/kWh" in capsys.readouterr().out

    status, _, err = market("allocate", str(offer["offerId"]), "3001", signer=BUYER)
    assert status == 1 and "offers: allocation exceeds the offered amount" in err
    buyer_before = balances(market, BUYER)
    status, allocated, _ = market("allocate", str(offer["offerId"]), "1234", "--pay", signer=BUYER)
    # 1.234 kWh at 0.25 GUSD/kWh = 30.85 cents, rounded up to 0.31 GUSD
    assert status == 0 and allocated["amountFiat"] == 31 and allocated["escrowed"]
    assert balances(market, BUYER)["fiat"] == buyer_before["fiat"] - 31
    status, _, err = market("settle", str(allocated["allocationId"]), signer=BUYER)
    assert status == 1 and "offers: delivery not confirmed by the buyer's meter" in err
    status, _, err = market("settle", str(allocated["allocationId"]), "--refund", signer=BUYER)
    assert status == 1 and "offers: not expired" in err

    status, _, _ = market("reading", address(BUYER), "--consumption", "1500", signer=BUYER_ORACLE)
    assert status == 0
    seller_before = balances(market, SELLER)
    status, settled, _ = market("settle", str(allocated["allocationId"]), signer=ADMIN)  # anyone may settle
    assert status == 0 and settled["amountFiat"] == 31 and settled["amountWh"] == 1234
    assert balances(market, SELLER)["fiat"] == seller_before["fiat"] + 31
    assert balances(market, BUYER)["energy"] == buyer_before["energy"] + 1234


def test_errors_are_one_line_without_a_traceback(node):
    def gridnode(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli.main", "market", *args], capture_output=True, text=True,
                              timeout=120)

    refused = gridnode("transfer", "energy", address(BUYER), "10", "--rpc", node.url, "--key", key(ACCOUNTS[5]))
    assert refused.returncode == 1 and refused.stderr.strip().endswith("energy: transfer amount exceeds balance")
    no_key = gridnode("transfer", "fiat", address(BUYER), "1", "--rpc", node.url)
    assert no_key.returncode == 1 and "--key" in no_key.stderr
    unreachable = gridnode("balances", address(BUYER), "--rpc", "http://127.0.0.1:9")
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
    for result in (refused, no_key, unreachable):
        assert "Traceback" not in result.stderr
