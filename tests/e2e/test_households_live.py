"""Paper 001's households on chain: a few half-hour slots of the equilibrium strategies executed
through Meters, EnergyToken and the DoubleAuction of a running devnet, then checked against the
chain's own state (meter totals, token balances, the auction's escrow), not against the
executor's bookkeeping alone."""
from __future__ import annotations

import time

import pytest
from helpers import node_from_genesis
from market.economics.households import Route, equilibrium_day, paper_community
from market.experiments.households_live import (OPERATOR, LiveCommunity, check, devnet_document, plan_slot)

SLOTS = (3, 8, 19)
"""8:30 (community trade, the operator tops up a buyer, a main-grid buyer in its own book),
11:00 (sellers' surplus beyond the community's demand comes back unsold) and
16:30 (community buyers and a main-grid buyer again)."""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A devnet with 3-block DoubleAuction intervals and 1-second meter slots, via `gridnode init`."""
    with node_from_genesis(tmp_path_factory.mktemp("households"),
                           lambda signer: devnet_document(signer, interval_blocks=3)) as process:
        yield process


@pytest.mark.slow
def test_equilibrium_slots_executed_on_chain_match_what_was_sent(node):
    started = time.monotonic()
    community = paper_community()
    day = equilibrium_day(community)
    plans = [plan_slot(community, t, day.strategies[t]) for t in SLOTS]
    routes = {route for plan in plans for route in plan.routes}
    assert {Route.SELL_COMMUNITY, Route.BUY_COMMUNITY, Route.BUY_MAIN} <= routes  # every book is exercised

    live = LiveCommunity(node.url, len(community.houses))
    w3 = live.w3
    fiat, energy = live.operator.contract("FiatToken"), live.operator.contract("EnergyToken")
    meters, auction = live.operator.contract("Meters"), live.operator.contract("DoubleAuction")
    wallets = [live.operator.address] + [home.address for home in live.homes]
    fiat_before = sum(fiat.functions.balanceOf(a).call() for a in wallets)
    energy_before = [energy.functions.balanceOf(a).call() for a in wallets]
    try:
        live.setup()
        records = [live.execute(plan) for plan in plans]
    finally:
        live.close()

    # The executor's record, rebuilt from the chain's events, agrees with every reading and order.
    for plan, record in zip(plans, records):
        assert check(plan, record) == []
        assert len(set(record.intervals)) == len(plan.books)  # one auction interval per book
    # The meters hold exactly the readings sent.
    for i, home in enumerate(live.homes):
        assert meters.functions.totalConsumption(home.address).call() == sum(p.consumption_wh[i] for p in plans)
        assert meters.functions.totalGeneration(home.address).call() == sum(p.pv_wh[i] for p in plans)

    # Energy: a buyer ends with its whole deficit, a community seller with what the community did
    # not take; over the households that is each slot's demand plus the supply minus min(supply, demand).
    # (A main-grid seller's minted surplus all goes to the operator.)
    expected_homes = expected_operator_sold = expected_operator_bought = 0
    for plan in plans:
        net, routes, expected = plan.net_wh, plan.routes, plan.expected()
        supply = sum(n for n, r in zip(net, routes) if r == Route.SELL_COMMUNITY and n > 0)
        expected_homes += sum(expected["bought_wh"]) + supply - expected["community_wh"]
        main_bought = -sum(w for w in expected["main_wh"] if w < 0)
        expected_operator_sold += expected["community_shortfall_wh"] + main_bought
        expected_operator_bought += sum(w for w in expected["main_wh"] if w > 0)
    homes_now = sum(energy.functions.balanceOf(h.address).call() for h in live.homes)
    assert homes_now - sum(energy_before[1:]) == expected_homes
    minted = energy.events.Transfer().get_logs(from_block=0, argument_filters={"to": live.operator.address})
    minted_by_operator = sum(e.args.value for e in minted if int(e.args["from"], 16) == 0)
    largest_ask = max(o.wh for plan in plans for _, orders in plan.books for o in orders
                      if o.owner == OPERATOR and not o.is_bid)
    assert largest_ask <= minted_by_operator  # every grid ask was covered by minted stock
    operator_now = energy.functions.balanceOf(live.operator.address).call()
    assert operator_now - energy_before[0] == minted_by_operator - expected_operator_sold + expected_operator_bought
    assert expected_operator_sold > 0  # the operator did sell grid energy in these slots

    # Fiat only changed hands: nothing left in escrow, nothing created or lost.
    assert fiat.functions.balanceOf(auction.address).call() == 0
    assert energy.functions.balanceOf(auction.address).call() == 0
    assert sum(fiat.functions.balanceOf(a).call() for a in wallets) == fiat_before
    assert w3.eth.block_number > records[-1].blocks[0]
    print(f"\n{len(SLOTS)} slots on chain in {time.monotonic() - started:.1f} s")
