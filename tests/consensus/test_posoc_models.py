"""The bit-for-bit check of the mLAG's aggregate (eq. 4.19) on a producing chain and a follower:
a challenge that carries the included updates voids a wrong aggregate and slashes its poster's
validator on every node; a right aggregate survives it; a blob that is not the committed one proves
nothing; an aggregate too large to challenge in one transaction is refused. Windows are crossed in
one block each (the draw needs no charger reports), so the whole module runs in seconds."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from consensus.posoc.engine import MAX_CHALLENGE_BYTES, POSOC_ADDRESS, aggregate, challenge, commitment
from consensus.rules.fedavg import Model, aggregate_hash
from genesis.devnet import DEVNET_ACCOUNTS, dev_accounts, posoc_genesis_document
from node import aggregate_check
from node.aggregate_check import AggregateChecker
from node.intake import TransactionIntake
from node.mempool import Mempool
from node.models import ModelStore
from scored_net import VALIDATORS, ScoredNet
from vm.crypto import keccak256

HOUR, WINDOW_HOURS, EVS = 5, 2, 6
WINDOW = HOUR * WINDOW_HOURS
ACCOUNTS = dev_accounts(40)
FIRST_EV = DEVNET_ACCOUNTS - EVS
CHALLENGER = ACCOUNTS[1]
LAYOUT = (("b", (2,)), ("w", (2, 2)))


def update(seed: int) -> bytes:
    """A small update whose parameters differ per EV (some negative, so the floor matters)."""
    return Model(LAYOUT, 16, np.arange(6, dtype=np.int64) * (seed - 2) - seed).encode()


class Net(ScoredNet):
    def __init__(self, tmp_path) -> None:
        document = posoc_genesis_document([v.address for v in VALIDATORS], EVS, HOUR, WINDOW_HOURS)
        super().__init__(tmp_path, document, WINDOW, start=1_700_000_000)
        self.engine = self.chain.engine

    def next_window(self) -> int:
        """One block at the first second of the next window (which draws its mLAG); the window."""
        self.block(delay=(self.time // WINDOW + 1) * WINDOW - self.time - 1)
        return self.time // WINDOW

    def mlag(self):
        address = self.engine.status(self.chain, self.chain.state())["mlag"]
        return next(a for a in ACCOUNTS if a.address.to_checksum() == address)

    def commit(self, round_: int, blobs: dict[int, bytes], sizes: dict[int, int] = {}) -> None:
        """EV #k (genesis index) commits to blobs[k], or to a bare size for sizes[k]."""
        self.block([self.call(ACCOUNTS[FIRST_EV + k].private_key, POSOC_ADDRESS,
                              commitment(round_, keccak256(blobs[k]) if k in blobs else bytes([k]) * 32,
                                         len(blobs[k]) if k in blobs else sizes[k]))
                    for k in sorted({*blobs, *sizes})])

    def send(self, account, data: bytes) -> None:
        block = self.block([self.call(account.private_key, POSOC_ADDRESS, data, gas=2_000_000)])
        assert len(block.transactions) == 1

    def views(self) -> list[dict]:
        """The engine's view on the producer and on the follower (they must agree)."""
        return [self.engine.status(self.chain, chain.state()) for chain in (self.chain, self.follower)]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    net = Net(tmp_path_factory.mktemp("posoc-models"))
    net.block()
    net.next_window()
    return net


def test_an_aggregate_over_the_challenge_bound_is_refused_and_a_right_one_survives_a_challenge(net):
    round_ = net.time // WINDOW
    blobs = {0: update(0), 1: update(1), 2: update(2)}
    room = MAX_CHALLENGE_BYTES - sum(len(b) for b in blobs.values())
    net.commit(round_, blobs, {3: room // 2, 4: room - room // 2 + 1})
    net.next_window()
    mlag = net.mlag()
    right = aggregate_hash([blobs[k] for k in (0, 1, 2)])
    net.send(mlag, aggregate(round_, right, [0, 1, 2, 3, 4]))  # one byte over the bound
    assert all(view["model"]["aggregates"] == [] for view in net.views())
    net.send(mlag, aggregate(round_, right, [0, 1, 2]))
    before = net.views()
    record = before[0]["model"]["aggregates"][-1]
    assert record == {"round": round_, "hash": "0x" + right.hex(), "voided": False, "by": mlag.address.to_checksum(),
                      "included": [ACCOUNTS[FIRST_EV + k].address.to_checksum() for k in (0, 1, 2)],
                      "blockNumber": net.chain.head.number}
    net.send(CHALLENGER, challenge(round_, [blobs[k] for k in (0, 1, 2)]))
    after = net.views()
    for view_before, view_after in zip(before, after):
        assert view_after["model"]["aggregates"] == view_before["model"]["aggregates"]
        assert view_after["validators"] == view_before["validators"]
        assert view_after["penalties"] == view_before["penalties"]


def test_a_wrong_aggregate_is_voided_and_its_validator_slashed_on_every_node(net):
    round_ = net.time // WINDOW
    blobs = {1: update(1), 3: update(3), 5: update(5)}
    net.commit(round_, blobs)
    net.next_window()
    mlag = net.mlag()
    validator = next(ev.validator for ev in net.engine.config.evs if ev.address == mlag.address)
    wrong = aggregate_hash([blobs[1], blobs[3]])  # the average of two, posted as that of three
    net.send(mlag, aggregate(round_, wrong, [1, 3, 5]))
    stake = net.engine.stake(net.chain.state(), validator)
    assert stake > 0
    forged = [blobs[1], blobs[3], update(6)]  # not what EV #5 committed to: proves nothing
    net.send(CHALLENGER, challenge(round_, forged))
    net.send(CHALLENGER, challenge(round_, [blobs[1], blobs[3]]))  # one blob short
    for view in net.views():
        assert view["model"]["aggregates"][-1]["voided"] is False
        assert not any("aggregate" in p["reason"] for p in view["penalties"])
    net.send(CHALLENGER, challenge(round_, [blobs[k] for k in (1, 3, 5)]))
    for chain, view in zip((net.chain, net.follower), net.views()):
        assert view["model"]["aggregates"][-1]["voided"] is True
        assert view["penalties"][-1]["reason"] == f"aggregate of round {round_} does not match its updates"
        assert view["penalties"][-1]["validator"].lower() == validator.to_checksum().lower()
        assert net.engine.stake(chain.state(), validator) == stake - stake * net.engine.set.slash_ppm // 1_000_000
    count = len(net.views()[0]["penalties"])
    net.send(CHALLENGER, challenge(round_, [blobs[k] for k in (1, 3, 5)]))  # punished once
    assert all(len(view["penalties"]) == count for view in net.views())


def test_naming_a_malformed_update_voids_the_aggregate(net):
    round_ = net.time // WINDOW
    blobs = {0: update(0), 2: b"not a model"}
    net.commit(round_, blobs)
    net.next_window()
    mlag = net.mlag()
    net.send(mlag, aggregate(round_, aggregate_hash([blobs[0]]), [0, 2]))
    net.send(CHALLENGER, challenge(round_, [blobs[0], blobs[2]]))
    for view in net.views():
        assert view["model"]["aggregates"][-1]["voided"] is True
        assert view["penalties"][-1]["reason"] == f"aggregate of round {round_} does not match its updates"


def test_a_challenge_of_an_aggregate_at_the_byte_bound_fits_one_transaction(net):
    """Six updates of 19,999 bytes (random, so nearly every calldata byte costs 16 gas): the
    challenge carrying them all passes the pool, the producer and the follower's import."""
    rng = np.random.default_rng(12)
    round_ = net.time // WINDOW
    blobs = {k: Model((("w", (2498,)),), 16, rng.integers(-2**52, 2**52, 2498)).encode() for k in range(EVS)}
    assert sum(map(len, blobs.values())) <= MAX_CHALLENGE_BYTES
    net.commit(round_, blobs)
    net.next_window()
    net.send(net.mlag(), aggregate(round_, b"\x01" * 32, list(range(EVS))))
    data = challenge(round_, [blobs[k] for k in range(EVS)])
    assert len(data) > 120_000
    net.send(CHALLENGER, data)
    assert all(view["model"]["aggregates"][-1]["voided"] is True for view in net.views())


def test_a_node_with_the_updates_challenges_a_wrong_aggregate_by_itself_once(tmp_path, monkeypatch):
    """The follower's AggregateChecker, its store holding the updates (no network): the block with
    the wrong aggregate starts a check, the check sends one challenge, and the challenge voids it."""
    monkeypatch.setattr(aggregate_check, "STAGGER_SECONDS", 0)
    net = Net(tmp_path)
    net.block()
    round_ = net.next_window()
    blobs = {0: update(0), 4: update(4)}
    net.commit(round_, blobs)
    net.next_window()
    mlag = net.mlag()
    store = ModelStore(tmp_path / "models")
    for blob in blobs.values():
        store.put(blob)
    mempool = Mempool(net.follower.chain_id, net.follower.genesis.gas_limit)
    challenger = VALIDATORS[1]

    async def scenario() -> list:
        checker = AggregateChecker(net.follower, TransactionIntake(net.follower, mempool), challenger, store, None,
                                   asyncio.get_running_loop())
        net.send(mlag, aggregate(round_, aggregate_hash([blobs[0]]), [0, 4]))
        await asyncio.sleep(0)  # the head change reaches `follow`
        reports = await asyncio.gather(*checker._tasks)
        net.block()  # a later head change does not check the round again
        await asyncio.sleep(0)
        assert not checker._tasks
        return reports

    [report] = asyncio.run(scenario())
    assert report["match"] is False and report["computedHash"] == "0x" + aggregate_hash(list(blobs.values())).hex()
    [sent] = list(mempool.executable(net.follower.state(), net.base_fee()))
    assert sent.to == POSOC_ADDRESS and sent.sender == challenger.address
    assert sent.data == challenge(round_, [blobs[0], blobs[4]])
    net.block([sent])
    assert all(view["model"]["aggregates"][-1]["voided"] is True for view in net.views())
