"""`gridnode sim vpp --live`: paper 004's VPP agents as separate processes on a localnet, one
simulated hour of each case (03:00 IV, 08:00 II, 13:00 III, 21:00 I, Table 3's rows), six
1-second blocks an hour. Afterwards the localnet's chain is opened again from its data dir and
every per-case counter the command printed is checked against it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from genesis.devnet import dev_accounts
from helpers import NodeProcess

from market.economics.vpp import plan_day

HOURS = [3, 8, 13, 21]
ACCOUNTS = [a.address.to_checksum() for a in dev_accounts(7)]
ROLE_ADDRESS = {"coordinator": ACCOUNTS[0], "ess": ACCOUNTS[1], "diesel": ACCOUNTS[2],
                **{f"house{i}": ACCOUNTS[3 + i] for i in range(4)}}


@pytest.mark.slow
def test_live_vpp_hours_match_the_chain(tmp_path):
    logs, figure = tmp_path / "run", tmp_path / "vpp.png"
    run = subprocess.run([sys.executable, "-m", "cli.main", "sim", "vpp", "--live", "--hours",
                          ",".join(map(str, HOURS)), "--logs", str(logs), "--plot", str(figure), "--json"],
                         capture_output=True, text=True, timeout=150)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert figure.stat().st_size > 10_000
    assert {role: (a["exit"], a["errors"]) for role, a in result["agents"].items()} == {
        role: (0, []) for role in ROLE_ADDRESS}

    cases = result["cases"]
    assert {name: (c["hours"], c["scheme"]) for name, c in cases.items()} == {
        "I": ([21], "RS1"), "II": ([8], "RS2"), "III": ([13], "RS2"), "IV": ([3], "RS3")}
    # Every lot of the plan was auctioned once, in the hour and by the opener its scheme names.
    plans = {p.hour: p for p in plan_day(4)}
    for hour in HOURS:
        opened = [a for a in result["auctions"] if a["hour"] == hour]
        assert sorted((a["seller"], a["wh"]) for a in opened) == sorted(
            (lot.seller, lot.wh) for lot in plans[hour].lots), hour
        assert all(a["owner"] == ROLE_ADDRESS[lot.opener] for a in opened
                   for lot in plans[hour].lots if (lot.seller, lot.wh) == (a["seller"], a["wh"]))
    assert result["outside_hours"] == []

    # The chain, opened again from the first node's data dir.
    node = NodeProcess(logs / "net" / "node0").start()
    try:
        w3 = node.web3()
        listed = w3.provider.make_request("grid_contracts", [])["result"]
        factory = w3.eth.contract(address=listed["AuctionFactory"]["address"], abi=listed["AuctionFactory"]["abi"])
        at = result["last_block"]
        assert factory.functions.auctionCount().call(block_identifier=at) == result["factory_auctions"] == sum(
            c["auctions"] for c in cases.values())
        per_case = {name: {"accepted": 0, "wh": 0} for name in cases}
        for index, auction in enumerate(result["auctions"]):
            assert factory.functions.auctionAt(index).call(block_identifier=at) == auction["auction"]
            contract = w3.eth.contract(address=auction["auction"], abi=listed["EnglishAuction"]["abi"])
            logs_bid = contract.events.LogBid().get_logs(from_block=0, to_block=at)
            assert len(logs_bid) == auction["bids_accepted"] <= auction["bids_sent"]
            assert contract.functions.highestBindingBid().call(block_identifier=at) == auction["price_wei"]
            winner = contract.functions.highestBidder().call(block_identifier=at)
            assert (int(winner, 16) != 0) == (auction["winner"] is not None) == bool(logs_bid)
            # Every party has withdrawn: the auction holds no elecoins any more.
            assert w3.eth.get_balance(auction["auction"], block_identifier=at) == 0
            per_case[auction["case"]]["accepted"] += len(logs_bid)
            per_case[auction["case"]]["wh"] += auction["wh"] if logs_bid else 0
        for name, case in cases.items():
            assert case["auctions"] > 0, name
            assert (case["bids_accepted"], case["energy_traded_wh"]) == (per_case[name]["accepted"],
                                                                          per_case[name]["wh"])
            assert 0 < case["energy_traded_wh"] <= case["energy_planned_wh"]
            assert case["bids_accepted"] <= case["bids_sent"]
    finally:
        node.stop()


def test_the_agents_clock_and_roles():
    """Simulated hours on block numbers, as every agent of a live run reads them."""
    from market.agents.vpp import Clock, roles

    clock = Clock(first_block=11, blocks_per_hour=6, hours=HOURS)
    assert [clock.hour_at(b) for b in (10, 11, 16, 17, 28, 34, 35)] == [None, 3, 3, 8, 13, 21, None]
    assert (clock.start_of(2), clock.end_block) == (23, 34)
    with pytest.raises(ValueError, match="at least 6 blocks"):
        Clock(1, 5, HOURS)
    assert dict(roles(4)) == {"coordinator": 0, "ess": 1, "diesel": 2, "house0": 3, "house1": 4, "house2": 5,
                              "house3": 6}
    with pytest.raises(ValueError, match="1 to 17 households"):
        roles(18)


def test_an_agent_refuses_a_key_that_is_not_its_role(tmp_path, capsys):
    from market.agents.vpp import main

    with pytest.raises(SystemExit):
        main(["house0", "--key", "0x12", "--first-block", "1"])
    assert "the key is 32 bytes of hex" in capsys.readouterr().err
    roles_file = tmp_path / "roles.json"
    roles_file.write_text("[1, 2]")
    assert main(["house0", "--key", "0x" + "11" * 32, "--first-block", "1", "--roles", str(roles_file)]) == 1
    assert "--roles" in capsys.readouterr().err
