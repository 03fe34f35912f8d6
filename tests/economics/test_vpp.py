"""Paper 004's VPP cases (§V, Tables 2–4) on the synthetic day, and `gridnode sim vpp` off chain."""
import json
import subprocess
import sys

import pytest

from market.economics import vpp
from market.economics.vpp import (COORDINATOR, DIESEL, ESS, PROFILE, Case, Scheme, classify, clear_hour, ess_backup,
                                  plan_day, split)


@pytest.fixture(scope="module")
def day():
    return plan_day()


def hours_of(day, case):
    return [p.hour for p in day if p.case is case]


def test_table3_rows_classify_as_the_paper_says():
    """Table 3 in W (the paper's kW to the watt): TG, TL, backup, and the case it names."""
    rows = [  # time, TG, TL, ESS backup (TG + backup − TL minus TG − TL), case
        (3, 502_907, 518_800, 15_893, Case.IV),
        (8, 551_334, 536_400, -14_934, Case.II),
        (13, 850_872, 479_000, -40_000, Case.III),
        (21, 476_163, 694_600, 40_000, Case.I),
    ]
    for _hour, tg, tl, backup, case in rows:
        assert classify(tg, tl, backup) is case
    # Table 2's attributes of each case.
    assert (Case.I.ess_status, Case.I.demand, Case.I.charging) == ("short", "not enough", "discharging")
    assert (Case.II.ess_status, Case.II.charging) == ("short", "charging needed")
    assert (Case.III.ess_status, Case.III.demand) == ("charged", "enough")
    assert (Case.IV.ess_status, Case.IV.demand, Case.IV.charging) == ("charged", "just enough", "discharging")
    # The boundaries: a zero aided gap is "just enough", by the sign of the raw gap.
    assert classify(100, 100, 0) is Case.II
    assert classify(99, 100, 1) is Case.IV
    assert classify(98, 100, 1) is Case.I
    assert classify(102, 100, -1) is Case.III


def test_the_synthetic_day_reproduces_table3(day):
    by_hour = {p.hour: p for p in day}
    # (hour, TG + backup − TL, TG − TL) in W, as in Table 3's columns
    assert [(h, by_hour[h].aided_w, by_hour[h].gap_w) for h in (3, 8, 13, 21)] == [
        (3, 0, -15_893), (8, 0, 14_934), (13, 331_872, 371_872), (21, -178_437, -218_437)]
    assert [by_hour[h].case for h in (3, 8, 13, 21)] == [Case.IV, Case.II, Case.III, Case.I]


def test_each_case_occurs_at_the_hours_the_paper_names(day):
    assert len(day) == 24 and [p.hour for p in day] == list(range(24))
    assert set(range(0, 6)) | {17} <= set(hours_of(day, Case.IV))   # "from midnight to 5 am and at 5 pm"
    assert hours_of(day, Case.II) == [8, 9]                          # "between 8-9 am"
    assert set(hours_of(day, Case.III)) == set(range(10, 17))        # the midday surplus
    assert set(range(18, 24)) <= set(hours_of(day, Case.I))          # the evening peak
    # The blue curve (ESS-aided gap) touches zero exactly in the Case II and IV hours.
    assert [p.hour for p in day if p.aided_w == 0] == sorted(hours_of(day, Case.II) + hours_of(day, Case.IV))


def test_the_ess_charges_and_discharges_within_its_limits(day):
    assert ess_backup(-15_000, 200_000) == 15_000
    assert ess_backup(-90_000, 200_000) == vpp.ESS_POWER_W
    assert ess_backup(-90_000, 7_000) == 7_000                  # no more than it holds
    assert ess_backup(90_000, 395_000) == -5_000                # no more than it has room for
    stored = vpp.ESS_START_WH
    for plan in day:
        stored -= plan.backup_w
        assert plan.stored_wh == stored and 0 <= stored <= vpp.ESS_CAPACITY_WH
        assert abs(plan.backup_w) <= vpp.ESS_POWER_W
        assert (plan.backup_w > 0) == (plan.case in (Case.I, Case.IV))  # Table 2's charging column


def test_every_hour_balances_and_uses_the_recommended_scheme(day):
    for plan in day:
        assert sum(wh for _, wh in plan.sellers) == sum(wh for _, wh in plan.buyers) > 0
        assert plan.scheme is vpp.SCHEME[plan.case]
        assert vpp.RECOMMENDATIONS[plan.case][plan.scheme] in ("Recommended", "Strongly Recommended")
        assert sum(lot.wh for lot in plan.lots) == sum(wh for _, wh in plan.sellers)
        assert (plan.diesel_wh > 0 or plan.grid_import_wh > 0) == (plan.case is Case.I)
        assert (plan.grid_export_wh > 0) == (plan.case is Case.III)
        openers = {lot.opener for lot in plan.lots}
        if plan.scheme is Scheme.RS2:
            assert openers == {who for who, _ in plan.sellers}       # each seller opens its own
        else:
            assert openers == {COORDINATOR}                          # RS1 and RS3: the coordinator
    assert vpp.RECOMMENDATIONS[Case.IV][Scheme.RS2] == "Not Recommended"
    assert vpp.RECOMMENDATIONS[Case.III][Scheme.RS2] == "Strongly Recommended"
    # The roles of Case I: diesel at its rating, the rest from the grid through the coordinator.
    evening = {p.hour: p for p in day}[21]
    assert (evening.supply(DIESEL), evening.supply(COORDINATOR)) == (100_000, 78_437)
    assert evening.supply(ESS) == 40_000


def test_split_is_exact_and_deterministic():
    assert split(10, [1, 1, 1]) == [4, 3, 3]
    assert split(518_800, [9, 10, 11, 12]) == [111_171, 123_524, 135_876, 148_229]
    assert sum(split(476_163, [9, 10, 11, 12, 13])) == 476_163
    assert split(0, [1, 2]) == [0, 0]
    assert PROFILE[3].generation_w == 502_907


def test_lots_clear_with_algorithm_1(day):
    night = {p.hour: p for p in day}[3]
    outcomes = clear_hour(night)
    assert [o.lot.seller for o in outcomes] == ["house0", "house2", ESS]
    first = outcomes[0]
    # Both PV households bid their whole value for the first lot: the needier one (120 % of the grid price)
    # wins at the binding bid, capped by its own total since the other's total + increment is above it.
    assert first.winner == "house3" and first.bids == 2
    top = vpp.value_wei(first.lot.wh, vpp.valuation_per_kwh(night, "house3"))
    assert first.price == top
    # A lone bidder pays the increment (the feed-in floor).
    lone = outcomes[1]
    assert lone.bids == 1 and lone.price == vpp.lot_increment(night, lone.lot)
    for plan in day:
        for o in clear_hour(plan):
            assert (o.winner is None) == (o.bids == 0)
            assert o.winner not in (o.lot.seller, o.lot.opener)
            assert 0 <= o.price <= vpp.value_wei(o.lot.wh, vpp.GRID_PRICE_WEI_PER_KWH) * 120 // 100


def test_one_household_owns_wind_and_pv():
    (alone,) = vpp.households_of(PROFILE[13], 1)
    assert alone == PROFILE[13].generation_w - PROFILE[13].load_w
    with pytest.raises(ValueError):
        vpp.households_of(PROFILE[0], 0)


def test_sim_vpp_off_chain_prints_json_and_writes_the_figure(tmp_path, capsys):
    from market.experiments.vpp import run

    figure = tmp_path / "vpp.png"
    result = run(households=4, plot=str(figure))
    assert figure.stat().st_size > 10_000
    cases = result["cases"]
    assert sorted(cases) == ["I", "II", "III", "IV"]
    assert cases["II"]["hours"] == [8, 9] and cases["II"]["scheme"] == "RS2"
    assert sum(c["auctions"] for c in cases.values()) == sum(len(p["lots"]) for p in result["hours"])
    assert all(c["bids_accepted"] <= c["bids_sent"] for c in cases.values())

    cli = subprocess.run([sys.executable, "-m", "cli.main", "sim", "vpp", "--json", "--households", "3"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    parsed = json.loads(cli.stdout)
    assert parsed["households"] == 3 and parsed["cases"]["III"]["scheme"] == "RS2"
    from cli.main import main

    assert main(["sim", "vpp", "--hours", "3,8,13,21"]) == 0
    table = capsys.readouterr().out
    assert "Case III 13" in table and "Case IV  03" in table and "RS3" in table
    assert main(["sim", "vpp", "--hours", "3,3"]) == 1
    assert "error: hours are distinct whole hours" in capsys.readouterr().err
