"""A paper-002 hour with real processes: a devnet node and `gridnode agent …` subprocesses
trading through its JSON-RPC as any wallet would.

Three prosumers' meter oracles post readings every slot (the seller's generation, the
buyer's consumption, a third house balanced); the seller's oracle mints its energy tokens
against the reported generation and the seller offers them; late in the negotiation the
operator offers grid energy at the grid price for what is left of the demand, and it admits a
new member from its inbox; the buyer takes the cheapest offers until its demand is met,
escrows the fiat, and settles once its meter shows the energy delivered. Then every balance
is reconciled against the chain, to the Wh and the cent.

The market runs at 180x (an hour in 20 s of block time, slots of 5 s) on a devnet whose
Meters slot is set to match."""
from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from consensus.engine import Signer
from eth_account import Account
from genesis.devnet import dev_accounts, devnet_genesis_document
from helpers import NodeProcess
from node.datadir import write_secret

ACCOUNTS = [Account.from_key(a.private_key) for a in dev_accounts(39)]
TIME_SCALE = 180
SLOT_SECONDS = 5
SELLER, BUYER, BALANCED = 1, 2, 3
SELLER_PRICE, GRID_PRICE, MAX_PRICE = 25, 30, 40
"""Fiat base units (cents) per kWh: 0.25 GUSD/kWh from the prosumer undercuts the grid's 0.30."""
DEMAND_WH = 2_000
DEADLINE = 85.0
COMPLETED = 3


def oracle_of(index: int):
    return ACCOUNTS[19 + index]


def key_hex(account) -> str:
    return "0x" + bytes(account.key).hex()


@pytest.fixture
def market_node(tmp_path):
    """A devnet whose Meters slot is 900 s / TIME_SCALE, initialised with `gridnode init`."""
    datadir = tmp_path / "node"
    datadir.mkdir()
    key = secrets.token_bytes(32)
    write_secret(datadir / "signer.key", key.hex() + "\n")
    document = devnet_genesis_document(Signer(key).address)
    assert "Meters" in document.get("contracts", {}), "the devnet genesis lists no Meters contract"
    document["contracts"]["Meters"].setdefault("params", {})["slotSeconds"] = SLOT_SECONDS
    genesis_file = tmp_path / "genesis.json"
    genesis_file.write_text(json.dumps(document))
    init = subprocess.run([sys.executable, "-m", "cli.main", "init", "--genesis", str(genesis_file), "--datadir",
                           str(datadir)], capture_output=True, text=True)
    assert init.returncode == 0, f"gridnode init failed:\n{init.stdout}{init.stderr}"
    node = NodeProcess(datadir).start()
    yield node, document
    if node.alive():
        node.stop()


class Agents:
    """`gridnode agent` subprocesses, each printing JSON event lines into its own file."""

    def __init__(self, directory: Path, rpc: str) -> None:
        self.directory, self.rpc = directory, rpc
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, name: str, kind: str, key_file: Path, *args: str) -> None:
        out = open(self.directory / f"{name}.jsonl", "w")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "agent", kind, "--rpc", self.rpc, "--key", str(key_file),
             "--time-scale", str(TIME_SCALE), "--poll", "0.3", "--json", *args],
            stdout=out, stderr=open(self.directory / f"{name}.err", "w"))

    def events(self, name: str) -> list[dict]:
        lines = (self.directory / f"{name}.jsonl").read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def stop_all(self) -> dict[str, int]:
        for process in self.running.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return {name: process.wait(15) for name, process in self.running.items()}

    def check_alive(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise AssertionError(f"agent {name} exited with {process.returncode}:\n"
                                     + (self.directory / f"{name}.err").read_text()[-3000:])


@pytest.mark.slow
def test_paper002_hour(market_node, tmp_path):
    started = time.monotonic()
    node, document = market_node
    w3 = node.web3()
    listed = w3.provider.make_request("grid_contracts", [])["result"]
    c = {name: w3.eth.contract(address=listed[name]["address"], abi=listed[name]["abi"])
         for name in ("Offers", "FiatToken", "EnergyToken", "Meters", "Registry")}
    offers, fiat, energy, meters = c["Offers"], c["FiatToken"], c["EnergyToken"], c["Meters"]
    assert meters.functions.slotSeconds().call() == SLOT_SECONDS

    seller, buyer = ACCOUNTS[SELLER].address, ACCOUNTS[BUYER].address
    operator = ACCOUNTS[0].address
    newcomer, newcomer_meter = Account.create(), Account.create()
    inbox = tmp_path / "admissions.jsonl"
    inbox.write_text(json.dumps({"address": newcomer.address, "role": "prosumer", "name": "house-new",
                                 "oracle": newcomer_meter.address}) + "\n")
    keys = {}
    for name, account in (("operator", ACCOUNTS[0]), ("seller", ACCOUNTS[SELLER]), ("buyer", ACCOUNTS[BUYER]),
                          *((f"meter{i}", oracle_of(i)) for i in (SELLER, BUYER, BALANCED))):
        keys[name] = tmp_path / f"{name}.key"
        write_secret(keys[name], key_hex(account) + "\n")
    people = [a.address for a in ACCOUNTS[:4]] + [oracle_of(i).address for i in (1, 2, 3)]
    fiat_before = {a: fiat.functions.balanceOf(a).call() for a in people}
    energy_before = {a: energy.functions.balanceOf(a).call() for a in people}
    energy_supply_before = energy.functions.totalSupply().call()
    fiat_supply_before = fiat.functions.totalSupply().call()

    agents = Agents(tmp_path, node.url)
    try:
        agents.start("meter1", "meter", keys["meter1"], "--prosumer", seller, "--generation-wh", "2500")
        agents.start("meter2", "meter", keys["meter2"], "--prosumer", buyer, "--consumption-wh", "1000")
        agents.start("meter3", "meter", keys["meter3"], "--prosumer", ACCOUNTS[BALANCED].address,
                     "--generation-wh", "300", "--consumption-wh", "300", "--battery-wh", "5000")
        agents.start("seller", "seller", keys["seller"], "--price", str(SELLER_PRICE), "--min-offer-wh", "1000")
        agents.start("operator", "operator", keys["operator"], "--grid-price", str(GRID_PRICE),
                     "--capacity-wh", "5000", "--admit", str(inbox))

        agents.start("buyer", "buyer", keys["buyer"], "--demand-wh", str(DEMAND_WH), "--max-price", str(MAX_PRICE))

        def buyer_allocations():
            rows = [offers.functions.allocation(i).call() for i in range(offers.functions.allocationCount().call())]
            return [r for r in rows if r[1] == buyer]

        while True:
            agents.check_alive()
            mine = buyer_allocations()
            completed = sum(r[2] for r in mine if r[5] == COMPLETED)
            if completed >= DEMAND_WH and any(
                    offers.functions.offer(r[0]).call()[0] == seller and r[5] == COMPLETED for r in mine):
                break
            assert time.monotonic() - started < DEADLINE, f"the hour did not settle in time: {mine}"
            time.sleep(0.5)
    finally:
        codes = agents.stop_all()
    assert codes == {name: 0 for name in codes}, f"agents did not stop cleanly: {codes}"

    # Let anything an agent sent just before stopping be mined, then read one block.
    time.sleep(2.5)
    at = w3.eth.block_number

    def view(contract, function, *args):
        return getattr(contract.functions, function)(*args).call(block_identifier=at)

    allocations = [view(offers, "allocation", i) for i in range(view(offers, "allocationCount"))]
    all_offers = [view(offers, "offer", i) for i in range(view(offers, "offerCount"))]
    seller_offers = {i for i, o in enumerate(all_offers) if o[0] == seller}
    grid_offers = {i for i, o in enumerate(all_offers) if o[0] == operator}
    done = [a for a in allocations if a[5] == COMPLETED]

    # Every allocation costs its Wh at its offer's price per kWh, rounded up to the cent.
    for offer_id, who, wh, paid, _baseline, _status in allocations:
        assert who == buyer and (paid - 1) * 1_000 < wh * all_offers[offer_id][3] <= paid * 1_000
    first_allocation = allocations[0]

    # The seller: every Wh minted for it is in its wallet, still on offer, allocated, or sold;
    # its fiat grew by exactly what its completed allocations cost.
    minted = view(energy, "mintedWatts", seller)
    assert 0 < minted <= view(meters, "totalGeneration", seller)
    on_offer = sum(all_offers[i][2] for i in seller_offers)
    allocated_to_buyer = sum(a[2] for a in allocations if a[0] in seller_offers and a[5] != 4)
    assert view(energy, "balanceOf", seller) + on_offer + allocated_to_buyer == energy_before[seller] + minted
    seller_income = sum(a[3] for a in done if a[0] in seller_offers)
    assert seller_income > 0
    assert view(fiat, "balanceOf", seller) == fiat_before[seller] + seller_income

    # The buyer: its fiat went out exactly for what it escrowed; its energy tokens are what it was delivered,
    # and its meter showed at least that much consumption after its first allocation.
    escrowed = sum(a[3] for a in allocations if a[5] in (2, 3))
    assert view(fiat, "balanceOf", buyer) == fiat_before[buyer] - escrowed
    delivered = sum(a[2] for a in done)
    assert delivered >= DEMAND_WH
    assert view(energy, "balanceOf", buyer) == energy_before[buyer] + delivered
    assert view(meters, "totalConsumption", buyer) - first_allocation[4] >= delivered
    assert first_allocation[4] + delivered <= view(offers, "creditedOf", buyer) <= view(
        meters, "totalConsumption", buyer)

    # The operator: grid energy minted, and what the buyer took from it paid at the grid price.
    grid_income = sum(a[3] for a in done if a[0] in grid_offers)
    assert view(fiat, "balanceOf", operator) == fiat_before[operator] + grid_income
    assert all(all_offers[i][3] == GRID_PRICE for i in grid_offers)

    # The Offers contract holds exactly the escrow of what is still open or unsettled.
    unsettled_fiat = sum(a[3] for a in allocations if a[5] == 2)
    held_energy = sum(o[2] for o in all_offers) + sum(a[2] for a in allocations if a[5] in (1, 2))
    assert view(fiat, "balanceOf", offers.address) == unsettled_fiat
    assert view(energy, "balanceOf", offers.address) == held_energy

    # Supplies: fiat is only moved; energy only minted (by meters and the operator) or burned.
    assert view(fiat, "totalSupply") == fiat_supply_before
    holders = people + [offers.address]
    assert view(energy, "totalSupply") == sum(view(energy, "balanceOf", a) for a in holders)
    assert view(energy, "totalSupply") - energy_supply_before == sum(
        view(energy, "balanceOf", a) - energy_before.get(a, 0) for a in holders)

    # Elecoins: under PoA only fees move, from senders to the block producer; none appear or vanish.
    producer = w3.provider.make_request("grid_nodeInfo", [])["result"]["producer"]
    everyone = {w3.to_checksum_address(a) for a in (*document["accounts"], producer)} | {
        newcomer.address, newcomer_meter.address, *(x["address"] for x in listed.values() if x["address"])}
    assert sum(w3.eth.get_balance(a, block_identifier=at) for a in everyone) == sum(
        w3.eth.get_balance(a, block_identifier=0) for a in everyone)
    assert w3.eth.get_balance(producer, block_identifier=at) > 0  # the fees

    # The operator admitted the newcomer with its meter.
    assert view(c["Registry"], "roleOf", newcomer.address) == 1
    assert view(c["Registry"], "roleOf", newcomer_meter.address) == 5
    assert view(meters, "oracleOf", newcomer.address) == newcomer_meter.address

    # What the agents reported is what the chain shows.
    reported = {name: agents.events(name) for name in agents.running}
    for name, lines in reported.items():
        assert lines[0]["event"] == "started" and lines[-1]["event"] == "stopped", name
        assert not [e for e in lines if e["event"] == "error"], f"{name} reported errors: {lines}"
    made = [e for name in ("buyer", "seller", "operator") for e in reported[name] if e["event"] == "transaction_made"]
    assert sorted(e["allocationId"] for e in made) == [i for i, a in enumerate(allocations) if a[5] == COMPLETED]
    assert all((e["amountWh"], e["amountFiat"]) == tuple(allocations[e["allocationId"]][2:4]) for e in made)
    assert sum(e["wh"] for e in reported["meter1"] if e["event"] == "watts_minted") == minted
    posted = [e for e in reported["meter2"] if e["event"] == "reading_posted"]
    assert sum(e["consumptionWh"] for e in posted) == view(meters, "totalConsumption", buyer)
    assert [e["address"] for e in reported["operator"] if e["event"] == "member_admitted"] == [newcomer.address]
    assert time.monotonic() - started < 90


# -- the agents' pieces, without a chain ------------------------------------------------------

def test_hourly_batches_on_the_chain_clock():
    from market.agents.schedule import CONFIRM, NEGOTIATE, HourlyBatch

    real = HourlyBatch()
    assert (real.hour_of(7_199), real.hour_of(7_200)) == (1, 2)
    assert (real.minute_of(3_600 + 49 * 60 + 59), real.phase(3_600 + 49 * 60 + 59)) == (49, NEGOTIATE)
    assert real.phase(3_600 + 50 * 60) == CONFIRM
    assert real.delivery_expiry(1) == 3 * 3_600 - 1  # negotiated in hour 1, delivered in hour 2

    fast = HourlyBatch(time_scale=TIME_SCALE)  # an hour in 20 s
    assert [fast.hour_of(t) for t in (0, 19, 20, 39, 40)] == [0, 0, 1, 1, 2]
    assert [fast.phase(t) for t in (20, 36, 37)] == [NEGOTIATE, NEGOTIATE, CONFIRM]  # minute 48, 48, 51
    assert (fast.hour_start(5), fast.delivery_expiry(5)) == (100, 139)
    assert HourlyBatch(time_scale=7).hour_start(1) == 515  # ceil(3600 / 7): the first second of hour 1
    with pytest.raises(ValueError, match="time scale"):
        HourlyBatch(time_scale=0)
    with pytest.raises(ValueError, match="negotiation"):
        HourlyBatch(negotiate_minutes=60)


def test_meter_readings_from_a_profile_or_a_csv_file(tmp_path):
    from market.agents.readings import CsvReadings, ReadingsExhausted, SlotReading, SyntheticReadings

    assert SyntheticReadings(1_000, 400, 5_000).reading(0, 3) == SlotReading(1_000, 400, 5_000)
    solar = SyntheticReadings(1_000, 400, solar=True)
    assert [solar.reading(0, h).generation_wh for h in (0, 8, 12, 36)] == [0, 450, 1_000, 1_000]

    good = tmp_path / "good.csv"
    good.write_text("generation_wh,consumption_wh,battery_wh\n1200,300,7000\n0,800,\n")
    readings = CsvReadings(good)
    assert [readings.reading(i, 0) for i in (0, 1)] == [SlotReading(1_200, 300, 7_000), SlotReading(0, 800, 0)]
    with pytest.raises(ReadingsExhausted):
        readings.reading(2, 0)
    (tmp_path / "columns.csv").write_text("gen,consumption_wh\n1,2\n")
    with pytest.raises(ValueError, match="missing column"):
        CsvReadings(tmp_path / "columns.csv")
    (tmp_path / "values.csv").write_text("generation_wh,consumption_wh\n1.5,2\n")
    with pytest.raises(ValueError, match=r"values.csv:2: generation_wh must be a whole number of Wh"):
        CsvReadings(tmp_path / "values.csv")


def test_the_operator_checks_admission_requests():
    from market.agents.operator import OperatorAgent

    address = ACCOUNTS[30].address
    request = OperatorAgent.parse_request(json.dumps({"address": address.lower(), "role": "EV", "name": "car-1"}))
    assert (request["address"], int(request["role"]), request["oracle"]) == (address, 4, None)
    refused = {
        "not json": "not JSON",
        "[1]": "a JSON object",
        json.dumps({"address": address, "role": "prosumer"}): "name is required",
        json.dumps({"address": "0x12", "role": "prosumer", "name": "h"}): "is not an address",
        json.dumps({"address": address, "role": "landlord", "name": "h"}): "unknown role",
        json.dumps({"address": address, "role": "meter_oracle", "name": "h"}): "admitted with the member",
        json.dumps({"address": address, "role": "prosumer", "name": "h", "colour": "red"}): "unknown fields",
        json.dumps({"address": address, "role": "prosumer", "name": "x" * 60}): "name must be",
    }
    for line, reason in refused.items():
        with pytest.raises(ValueError, match=reason):
            OperatorAgent.parse_request(line)


def test_agent_prices_are_per_kwh_with_realistic_defaults():
    """The command line's defaults are the agents' own: 0.25 GUSD/kWh for a seller, 0.30 for the grid."""
    from cli.main import build_parser
    from market.agents.buyer import affordable_wh
    from market.agents.operator import DEFAULT_GRID_PRICE_PER_KWH
    from market.agents.seller import DEFAULT_PRICE_PER_KWH

    parser = build_parser(["agent"])
    seller = parser.parse_args(["agent", "seller", "--key", "k"])
    operator = parser.parse_args(["agent", "operator", "--key", "k"])
    assert (seller.price, operator.grid_price) == (DEFAULT_PRICE_PER_KWH, DEFAULT_GRID_PRICE_PER_KWH) == (25, 30)
    assert parser.parse_args(["agent", "buyer", "--key", "k", "--demand-wh", "1"]).max_price is None
    # What a buyer can pay for: 1.00 GUSD buys 4,000 Wh at 0.25/kWh, 3,333 Wh at 0.30/kWh (3,334 would cost 1.01).
    assert (affordable_wh(100, 25), affordable_wh(100, 30), affordable_wh(0, 30)) == (4_000, 3_333, 0)


def test_agent_commands_fail_with_one_readable_line(capsys, tmp_path):
    from cli.main import main

    assert main(["agent", "seller", "--key", "0x1234", "--price", "2"]) == 1
    assert "error: a private key is 32 bytes" in capsys.readouterr().err
    (tmp_path / "missing.key").write_text("not hex\n")
    assert main(["agent", "buyer", "--key", str(tmp_path / "missing.key"), "--demand-wh", "10"]) == 1
    assert "error: cannot load the agent's key" in capsys.readouterr().err
    assert main(["agent", "seller", "--key", key_hex(ACCOUNTS[1]), "--price", "2", "--rpc", "http://127.0.0.1:9"]) == 1
    assert "error: cannot reach the node at http://127.0.0.1:9" in capsys.readouterr().err
    assert main(["agent", "meter", "--key", key_hex(ACCOUNTS[20]), "--prosumer", ACCOUNTS[1].address,
                 "--csv", str(tmp_path / "none.csv")]) == 1
    assert "error: --csv:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["agent", "buyer", "--key", key_hex(ACCOUNTS[2]), "--demand-wh", "0"])
    assert "expected at least 1" in capsys.readouterr().err


@pytest.mark.slow
def test_after_expiry_the_agents_wind_up(market_node):
    """The operator's grid offer is partly bought and never delivered: after its expiry the
    buyer takes its escrow back (refund), the operator takes back and burns the unsold rest and
    the refunded energy comes back to it. Agents in process, an hour in 10 s of block time."""
    from market.agents.buyer import BuyerAgent
    from market.agents.client import MarketClient
    from market.agents.operator import OperatorAgent
    from market.agents.schedule import HourlyBatch

    node, _document = market_node
    events: list[dict] = []
    schedule = HourlyBatch(time_scale=360)
    operator = OperatorAgent(MarketClient(node.url, ACCOUNTS[0].key), schedule, events.append,
                             grid_price_per_kwh=GRID_PRICE, capacity_wh=1_000, offer_after_minute=0)
    buyer_index = 16
    buyer = BuyerAgent(MarketClient(node.url, ACCOUNTS[buyer_index].key), schedule, events.append,
                       demand_wh=300)
    w3 = node.web3()
    listed = w3.provider.make_request("grid_contracts", [])["result"]
    energy = w3.eth.contract(address=listed["EnergyToken"]["address"], abi=listed["EnergyToken"]["abi"])
    fiat = w3.eth.contract(address=listed["FiatToken"]["address"], abi=listed["FiatToken"]["abi"])
    buyer_fiat = fiat.functions.balanceOf(ACCOUNTS[buyer_index].address).call()
    supply = energy.functions.totalSupply().call()

    def happened(agent: str, event: str) -> list[dict]:
        return [e for e in events if e["agent"] == agent and e["event"] == event]

    deadline = time.monotonic() + 60
    while not (happened("operator", "imbalance_covered") and happened("buyer", "allocation_refunded")):
        assert time.monotonic() < deadline, "\n".join(json.dumps(e) for e in events)
        now = operator.client.now()
        operator.step(now)
        if happened("operator", "offer_made"):
            operator.capacity_wh = 0  # one hour's grid offer only, so the wind-up is all there is
        buyer.step(now)
        if happened("buyer", "transaction_allowed"):
            buyer.demand_wh = 0  # one purchase; its meter never shows the energy
        time.sleep(0.3)
    assert not [e for e in events if e["event"] == "error"], events

    (offer,) = happened("operator", "offer_made")
    (allocated,) = happened("buyer", "energy_allocated")
    (covered,) = happened("operator", "imbalance_covered")
    # 0.3 kWh at 0.30 GUSD/kWh: 9 cents
    assert (allocated["offerId"], allocated["amountWh"], allocated["amountFiat"]) == (offer["offerId"], 300, 9)
    assert (offer["pricePerKWh"], allocated["pricePerKWh"]) == (GRID_PRICE, GRID_PRICE)
    assert (covered["injectedWh"], covered["burnedWh"]) == (300, 700)
    assert happened("operator", "offer_cancelled")[0]["returnedWh"] == 700
    assert fiat.functions.balanceOf(ACCOUNTS[buyer_index].address).call() == buyer_fiat  # escrow refunded
    # Minted 1,000 for the grid offer, burned the 700 never allocated; the 300 refunded are the operator's again.
    assert energy.functions.totalSupply().call() == supply + 300
    assert energy.functions.balanceOf(ACCOUNTS[0].address).call() == 300
