"""The PoSOC engine in process: three validators, six EVs whose chargers report every (short)
hour. At each window's end every node computes the EVs' window scores from the reports (eq. 4.17
of eq. 4.1) and draws the next window's mLAG (4.18); its validator produces, the others follow;
a wrong producer is rejected and a silent one replaced and slashed. The chargers' contract keeps
one final report per EV and hour, from its charger only; the federated-learning ledger keeps one
commitment per EV and round and the next window's mLAG's aggregate of them."""
from __future__ import annotations

import random

import pytest
from scipy.stats import chi2

from consensus.posoc.engine import POSOC_ADDRESS, aggregate, commitment
from consensus.rules.posoc import hour_score_int
from consensus.sampling import derive_seed, weighted_choice
from genesis.devnet import DEVNET_ACCOUNTS, dev_accounts, posoc_genesis_document
from market.contracts.addresses import EV_CHARGERS
from market.contracts.ev_chargers import EVChargers
from scored_net import VALIDATORS, ScoredNet
from vm.blocks import InvalidBlock
from vm.native.contract import encode_call
from vm.transition import execute_message

HOUR = 5
WINDOW_HOURS = 2
EVS = 6
ACCOUNTS = dev_accounts(40)
FIRST_EV = DEVNET_ACCOUNTS - EVS
POST_REPORT = "postReport(address,uint64,uint256,uint256,uint32,bool)"


class Net(ScoredNet):
    def __init__(self, tmp_path, start: int | None = None, hour: int = HOUR) -> None:
        document = posoc_genesis_document([v.address for v in VALIDATORS], EVS, hour, WINDOW_HOURS)
        super().__init__(tmp_path, document, hour * WINDOW_HOURS, start)
        self.hour = hour
        self.rng = random.Random(5)
        self.reported: set[int] = set()

    def reports(self, hour: int):
        """Each EV's charger reports `hour`: charged, discharged (more for later EVs) and the SOC
        (higher for later EVs, so less room left at departure: the EVs' scores differ)."""
        return [self.call(ACCOUNTS[DEVNET_ACCOUNTS + k - 1].private_key, EV_CHARGERS,
                          encode_call(POST_REPORT, [ACCOUNTS[k].address.to_checksum(), hour, self.rng.randint(0, 500),
                                                    self.rng.randint(0, 2000) * (k - FIRST_EV + 1),
                                                    200_000 + 100_000 * (k - FIRST_EV), hour % WINDOW_HOURS == 1]))
                for k in range(FIRST_EV, DEVNET_ACCOUNTS)]

    def run_window(self) -> None:
        """Blocks through the current window with every hour reported, up to the next window's first block."""
        window = self.time // (self.hour * WINDOW_HOURS)
        while (self.time + 1) // (self.hour * WINDOW_HOURS) == window:
            hour = (self.time + 1) // self.hour
            self.block([] if hour in self.reported else self.reports(hour))
            self.reported.add(hour)
        self.block()


def test_window_scores_and_the_mlag_draw_every_node_computes(tmp_path):
    net = Net(tmp_path)
    engine = net.chain.engine
    net.block()
    for _ in range(3):
        net.run_window()
        state = net.follower.state()
        assert net.follower.head.hash == net.chain.head.hash
        view = engine.status(net.chain, state)
        window = view["drawnWindow"] - 1
        expected = []
        for k in range(FIRST_EV, DEVNET_ACCOUNTS):
            total = 0
            for hour in range(window * WINDOW_HOURS, (window + 1) * WINDOW_HOURS):
                report = EVChargers.report_at(state, EV_CHARGERS, ACCOUNTS[k].address, hour)
                assert report is not None
                total += hour_score_int(engine.delta_ppm(hour), report.discharged_wh, report.charged_wh,
                                        report.soc_ppm, report.departing, report.soc_max_ppm, report.capacity_wh)
            expected.append(total)
        assert [ev["windowScore"] for ev in view["evs"]] == expected
        head = net.chain.head  # the window's first block: it made the draw
        seed = engine.seed(net.chain, net.chain.header_by_hash(head.parent_hash), window)
        mlag = weighted_choice([max(score, 0) + 1 for score in expected], derive_seed(seed, 0))
        assert view["mlag"] == ACCOUNTS[FIRST_EV + mlag].address.to_checksum()
        assert view["producer"] == view["evs"][mlag]["validator"]  # the mLAG's validator produces the window
        block = net.block()  # made by the mLAG's validator, and accepted by the follower
        assert block.header.producer.to_checksum() == view["producer"] and net.follower.head.hash == block.hash


def test_a_wrong_mlag_producer_is_rejected(tmp_path):
    net = Net(tmp_path)
    net.block()
    wrong = net.block(position=1, follow=False)
    with pytest.raises(InvalidBlock, match="wrong producer for the slot"):
        net.follower.import_block(wrong)


def test_a_silent_mlag_validator_is_replaced_by_its_fallback_and_slashed(tmp_path):
    net = Net(tmp_path)
    net.block()
    silent, fallback = net.order()[0], net.order()[1]
    block = net.block(position=1, delay=net.chain.engine.set.timeout)
    assert block.header.producer == fallback and net.follower.head.hash == block.hash
    engine, state = net.follower.engine, net.follower.state()
    assert engine.stake(state, silent) == 0 and engine.penalties(state)[-1]["reason"] == "silent producer"
    assert engine.schedule(state)[0] == fallback


def test_a_charger_reports_once_per_hour_for_its_own_ev_and_not_ahead(tmp_path):
    net = Net(tmp_path)
    net.block()
    state, hour = net.chain.state(), net.time // HOUR
    env = net.chain.environment(net.chain.head, net.time, VALIDATORS[0].address)
    ev, charger = ACCOUNTS[FIRST_EV], ACCOUNTS[DEVNET_ACCOUNTS + FIRST_EV - 1]

    def post(sender, hour_, charged=100):
        data = encode_call(POST_REPORT, [ev.address.to_checksum(), hour_, charged, 0, 400_000, False])
        return execute_message(state, env, net.chain.contracts, sender, EV_CHARGERS, 0, data, 500_000)

    assert "not the EV's charger" in post(ACCOUNTS[1].address, hour).error
    assert "in the future" in post(charger.address, hour + 1).error
    assert "above the battery's capacity" in post(charger.address, hour, charged=10**6).error
    assert post(charger.address, hour).succeeded
    assert "already reported" in post(charger.address, hour).error
    assert EVChargers.report_at(state, EV_CHARGERS, ev.address, hour).charged_wh == 100


def test_over_many_windows_each_evs_mlag_share_matches_its_score_share(tmp_path):
    """Pearson's chi-square over 150 windows on a fixed clock (so the run is the same every time):
    observed mLAG selections per EV against Σ over windows of its weight share; it passes at 1 %."""
    net = Net(tmp_path, start=1_700_000_000, hour=1)
    engine = net.chain.engine
    net.block()
    observed, expected = [0] * EVS, [0.0] * EVS
    for _ in range(150):
        net.run_window()
        view = engine.status(net.chain, net.chain.state())
        weights = [max(ev["windowScore"], 0) + 1 for ev in view["evs"]]
        for k, weight in enumerate(weights):
            expected[k] += weight / sum(weights)
        observed[[ev["address"] for ev in view["evs"]].index(view["mlag"])] += 1
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected))
    assert min(expected) >= 5, "enough windows for the chi-square approximation"
    assert statistic < chi2.ppf(0.99, EVS - 1), (observed, [round(e, 1) for e in expected], statistic)


def test_model_commitments_and_the_mlags_aggregate_are_recorded_by_the_rules(tmp_path):
    """Round r = window r: EVs commit once during it; only the window r + 1 mLAG aggregates it,
    naming only EVs that committed. Anything else is ignored (and still pays its gas)."""
    net = Net(tmp_path)
    engine = net.chain.engine
    net.block()
    net.run_window()
    round_ = net.time // (HOUR * WINDOW_HOURS)
    committers = range(FIRST_EV, FIRST_EV + 3)
    net.block([net.call(ACCOUNTS[k].private_key, POSOC_ADDRESS, commitment(round_, bytes([k]) * 32, 1_000))
               for k in committers])
    again = net.call(ACCOUNTS[FIRST_EV].private_key, POSOC_ADDRESS, commitment(round_, b"\x09" * 32, 1_000))
    stranger = net.call(ACCOUNTS[1].private_key, POSOC_ADDRESS, commitment(round_, b"\x08" * 32, 1_000))
    net.block([again, stranger])
    assert engine.status(net.chain, net.follower.state())["model"] == {"round": round_, "commitments": 3,
                                                                         "aggregates": []}
    net.run_window()
    view = engine.status(net.chain, net.follower.state())
    mlag = next(a for a in ACCOUNTS if a.address.to_checksum() == view["mlag"])
    other = next(a for a in ACCOUNTS[FIRST_EV:DEVNET_ACCOUNTS] if a.address != mlag.address)
    included = [k - FIRST_EV for k in committers]
    net.block([net.call(other.private_key, POSOC_ADDRESS, aggregate(round_, b"\x07" * 32, included)),
               net.call(mlag.private_key, POSOC_ADDRESS, aggregate(round_, b"\x06" * 32, included + [4]))])
    assert engine.status(net.chain, net.follower.state())["model"]["aggregates"] == []
    net.block([net.call(mlag.private_key, POSOC_ADDRESS, aggregate(round_, b"\x05" * 32, included))])
    [last] = engine.status(net.chain, net.follower.state())["model"]["aggregates"]
    assert last == {"round": round_, "hash": "0x" + "05" * 32,
                    "included": [ACCOUNTS[k].address.to_checksum() for k in committers], "by": view["mlag"],
                    "blockNumber": net.follower.head.number, "voided": False}
