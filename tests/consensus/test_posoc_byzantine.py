"""Byzantine PoSOC producers, each rejected by an honest follower that runs the same rules: one that
inflates an EV's window score (and so draws another mLAG), and one that lets an EV barred for an
unpaid mining fee trade on the V2V market. (A wrong mLAG producer, a silent one and a false model
aggregate have their own tests: test_posoc_engine.py, test_posoc_models.py.)"""
from __future__ import annotations

import pytest

from genesis.config import Genesis
from genesis.devnet import DEVNET_ACCOUNTS, dev_accounts, posoc_genesis_document
from market.contracts.addresses import ENERGY_TOKEN, EV_CHARGERS, FIAT_TOKEN
from market.contracts.v2v_market import BARRED, V2V_MARKET, V2VMarket
from node.chain import Chain
from node.store import Store
from scored_net import VALIDATORS, ScoredNet
from vm.blocks import InvalidBlock
from vm.native.contract import encode_call

HOUR = 5
WINDOW_HOURS = 2
EVS = 4
ACCOUNTS = dev_accounts(40)
SELLER, BUYER = DEVNET_ACCOUNTS - EVS, DEVNET_ACCOUNTS - EVS + 1


class Net(ScoredNet):
    """A producer with its own contract table and engine (so a test can corrupt them) and an honest follower."""

    def __init__(self, tmp_path) -> None:
        document = posoc_genesis_document([v.address for v in VALIDATORS], EVS, HOUR, WINDOW_HOURS)
        super().__init__(tmp_path, document, HOUR * WINDOW_HOURS)
        honest = Genesis.from_json(document)
        self.follower = Chain(Store(str(tmp_path / "honest")), honest, honest.create_engine())

    def ev_call(self, k: int, to, signature: str, args: list):
        return self.call(ACCOUNTS[k].private_key, to, encode_call(signature, args))

    def report(self, k: int, hour: int):
        return self.call(ACCOUNTS[DEVNET_ACCOUNTS + k - 1].private_key, EV_CHARGERS, encode_call(
            "postReport(address,uint64,uint256,uint256,uint32,bool)",
            [ACCOUNTS[k].address.to_checksum(), hour, 0, 1_000 * (k - SELLER + 1), 500_000, False]))

    def until(self, hour: int) -> None:
        while (self.time + 1) // HOUR < hour:
            self.block()


def test_an_inflated_window_score_is_rejected(tmp_path):
    net = Net(tmp_path)
    net.block()
    first = (net.time + 1) // HOUR
    net.block([net.report(k, first) for k in range(SELLER, DEVNET_ACCOUNTS)])
    net.until((first // WINDOW_HOURS + 1) * WINDOW_HOURS)  # the next block opens a window: it draws
    honest_scores = net.chain.engine.window_scores
    net.chain.engine.window_scores = lambda state, window: [s + (10**9 if k == 0 else 0)
                                                            for k, s in enumerate(honest_scores(state, window))]
    forged = net.block(follow=False)
    with pytest.raises(InvalidBlock, match="state root mismatch"):
        net.follower.import_block(forged)


def test_trading_by_an_ev_barred_for_an_unpaid_fee_is_rejected(tmp_path):
    """Prices 64..68 lie in every band's [buy-back, retail], whatever hour of the day the test runs at."""
    net = Net(tmp_path)
    market = V2V_MARKET.to_checksum()
    for token in (FIAT_TOKEN, ENERGY_TOKEN):
        net.block([net.ev_call(k, token, "approve(address,uint256)", [market, 2**255]) for k in (SELLER, BUYER)])
    window_seconds = HOUR * WINDOW_HOURS
    net.until(((net.time + 1) // window_seconds + 1) * WINDOW_HOURS)
    net.block()  # opens a window with an mLAG drawn
    window = net.time // window_seconds
    assert net.chain.engine.status(net.chain, net.chain.state())["mlag"] is not None
    net.block([net.ev_call(SELLER, V2V_MARKET, "placeAsk(uint256,uint256)", [7_000, 64]),
               net.ev_call(BUYER, V2V_MARKET, "placeBid(uint256,uint256)", [7_000, 68])])
    net.until((window + 2) * WINDOW_HOURS)  # the window closes, the seller does not pay, the deadline passes
    net.block()
    state = net.follower.state()
    assert V2VMarket.fee_totals_at(state, V2V_MARKET)["confiscated"] > 0
    assert BARRED.read(state, V2V_MARKET, ACCOUNTS[SELLER].address) == 1
    order = net.ev_call(SELLER, V2V_MARKET, "placeAsk(uint256,uint256)", [1_000, 66])
    market_code = net.chain.contracts.by_name("V2VMarket")
    market_code._check_order = lambda ctx, wh, price: None  # the byzantine producer's market forgets the bar
    forged = net.block([order], follow=False)
    assert net.chain.receipts(forged.hash)[-1].succeeded  # on the byzantine producer the barred EV traded
    with pytest.raises(InvalidBlock, match="mismatch"):  # the honest revert uses less gas than the forged order
        net.follower.import_block(forged)
