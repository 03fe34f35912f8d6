"""Paper 004's open English auction and its factory, in process on the sandbox: an agent
opens an auction through the factory, others bid elecoins, everyone withdraws by pull.
Every rule of Algorithm 1 and its revert reason, the events, and Table 1 replayed."""
from __future__ import annotations

import json
from pathlib import Path

import eth_abi
import pytest
from genesis.devnet import devnet_genesis_document
from market.contracts.auction import PLACE_BID, EnglishAuction, next_bid_state
from market.contracts.auction_factory import AUCTION_FACTORY, AuctionFactory
from market_sandbox import ACCOUNTS, PRODUCER, Sandbox
from paper004 import GWEI, TABLE_1, print_gas
from vm.crypto import keccak256
from vm.native.contract import CallContext, Revert, code_marker, encode_call
from vm.types import ZERO_ADDRESS, Address

OWNER, ALICE, BOB, CAROL, STRANGER = 1, 2, 3, 4, 5
"""Account indices: the owner opens the auction; Alice, Bob and Carol bid; the stranger never does."""
CREATE = "createAuction(uint256,uint256,uint256)"
CONTRACTS = Path(__file__).parents[2] / "market" / "contracts"
ABIS = {name: json.loads((CONTRACTS / file).read_text())
        for name, file in (("auction", "auction.abi.json"), ("factory", "auction_factory.abi.json"))}


def auction_box() -> Sandbox:
    """The devnet genesis with the auction factory placed at its default address, as the
    devnet places it."""
    document = devnet_genesis_document(PRODUCER)
    document["contracts"].setdefault("AuctionFactory", {"address": AUCTION_FACTORY.to_checksum()})
    return Sandbox(document)


def decoded(abi: list[dict], name: str, logs, address: Address) -> list[tuple]:
    """The `name` events among `logs` emitted by `address`, decoded from the ABI JSON."""
    (event,) = [e for e in abi if e["type"] == "event" and e["name"] == name]
    topic0 = keccak256(f"{name}({','.join(p['type'] for p in event['inputs'])})".encode())
    found = []
    for log in logs:
        if log.address != address or log.topics[0] != topic0:
            continue
        topics = iter(log.topics[1:])
        plain = iter(eth_abi.decode([p["type"] for p in event["inputs"] if not p["indexed"]], log.data))
        found.append(tuple(eth_abi.decode([p["type"]], next(topics))[0] if p["indexed"] else next(plain)
                           for p in event["inputs"]))
    return found


def who(index: int) -> str:
    return ACCOUNTS[index].address.to_checksum().lower()


class Auction:
    """One auction seen through its ABI, as a dApp sees it."""

    def __init__(self, box: Sandbox, address: str) -> None:
        self.box, self.address = box, Address.from_hex(address)

    def bid(self, sender: int, value: int):
        return self.box.transact(sender, self.address, "placeBid()", (), value=value)

    def withdraw(self, sender: int):
        return self.box.transact(sender, self.address, "withdraw()")

    def cancel(self, sender: int):
        return self.box.transact(sender, self.address, "cancelAuction()")

    def get(self, getter: str, kind: str = "uint256", *args):
        signature = f"{getter}({'address' if args else ''})"
        return self.box.call(STRANGER, self.address, signature, args, (kind,))[0]

    def funds(self, index: int) -> int:
        return self.get("fundsByBidder", "uint256", ACCOUNTS[index].address.to_checksum())

    def events(self, name: str, result) -> list[tuple]:
        return decoded(ABIS["auction"], name, result.logs, self.address)

    def run_past_end(self) -> None:
        while self.box.number <= self.get("endBlock"):
            self.box.mine()


def open_auction(box: Sandbox, increment: int = 75, starts_in: int = 1, lasts: int = 20,
                 owner: int = OWNER) -> Auction:
    start = box.number + starts_in
    result = box.transact(owner, "AuctionFactory", CREATE, (increment, start, start + lasts))
    assert result.ok, result.reason
    return Auction(box, result.decode("address")[0])


@pytest.fixture
def box() -> Sandbox:
    return auction_box()


# -- the factory ---------------------------------------------------------------------------------
def test_the_factory_opens_an_initialised_auction_owned_by_the_caller(box):
    start = box.number + 3
    result = box.transact(OWNER, "AuctionFactory", CREATE, (75, start, start + 100))
    assert result.ok
    (address,) = result.decode("address")
    assert decoded(ABIS["factory"], "AuctionCreated", result.logs, AUCTION_FACTORY) == [(address, who(OWNER))]
    assert box.state.get_code(Address.from_hex(address)) == code_marker("EnglishAuction")
    expected = Address(keccak256(AUCTION_FACTORY + (0).to_bytes(32, "big"))[12:])
    assert Address.from_hex(address) == expected, "the n-th auction's address is keccak(factory ‖ n)"
    auction = Auction(box, address)
    assert auction.get("owner", "address") == who(OWNER)
    assert (auction.get("bidIncrement"), auction.get("startBlock"), auction.get("endBlock")) == (75, start, start + 100)
    assert auction.get("canceled", "bool") is False and auction.get("ownerHasWithdrawn", "bool") is False
    assert (auction.get("highestBid"), auction.get("highestBindingBid")) == (0, 0)
    assert auction.get("highestBidder", "address") == ZERO_ADDRESS.to_checksum().lower()


def test_the_factory_lists_every_auction_and_each_owners(box):
    first = open_auction(box, owner=OWNER)
    second = open_auction(box, owner=ALICE)
    third = open_auction(box, owner=OWNER)
    lower = [str(a.address.to_checksum()).lower() for a in (first, second, third)]
    assert box.call(STRANGER, "AuctionFactory", "auctionCount()", (), ("uint256",)) == (3,)
    assert [box.call(STRANGER, "AuctionFactory", "auctionAt(uint256)", (i,), ("address",))[0]
            for i in range(3)] == lower
    assert box.call(STRANGER, "AuctionFactory", "auctionsOf(address)", (ACCOUNTS[OWNER].address.to_checksum(),),
                    ("address[]",)) == ((lower[0], lower[2]),)
    assert box.call(STRANGER, "AuctionFactory", "auctionsOf(address)", (ACCOUNTS[BOB].address.to_checksum(),),
                    ("address[]",)) == ((),)
    miss = box.transact(STRANGER, "AuctionFactory", "auctionAt(uint256)", (3,))
    assert (miss.ok, miss.reason) == (False, "factory: index out of range")
    assert AuctionFactory.auctions_at(box.state, AUCTION_FACTORY) == [a.address for a in (first, second, third)]


@pytest.mark.parametrize("start_offset, end_offset, reason", [
    (5, 5, "auction: start block is not before the end block"),
    (6, 5, "auction: start block is not before the end block"),
    (-5, 1, "auction: end block is not in the future"),   # the creating block itself is not ahead
    (-5, 0, "auction: end block is not in the future"),
])
def test_the_factory_refuses_a_bad_schedule_with_the_auctions_reason(box, start_offset, end_offset, reason):
    for _ in range(10):
        box.mine()
    now = box.number
    result = box.transact(OWNER, "AuctionFactory", CREATE, (75, now + start_offset, now + end_offset))
    assert (result.ok, result.reason) == (False, reason)
    assert box.call(STRANGER, "AuctionFactory", "auctionCount()", (), ("uint256",)) == (0,)


def test_an_auction_may_open_in_the_past_as_the_papers_did(box):
    """Paper 004 deployed with startBlock 1 on a chain far beyond it: the paper's rule is start
    before end and an end still ahead."""
    for _ in range(3):
        box.mine()
    result = box.transact(OWNER, "AuctionFactory", CREATE, (75, 1, 100_000))
    assert result.ok
    assert Auction(box, result.decode("address")[0]).bid(ALICE, 40).ok


def test_only_the_creating_factory_initialises_and_only_once(box):
    auction = open_auction(box)
    again = box.transact(OWNER, auction.address, "initialize(address,uint256,uint256,uint256)",
                         (ACCOUNTS[ALICE].address.to_checksum(), 1, 0, 10**6))
    assert (again.ok, again.reason) == (False, "auction: already initialized")
    assert auction.get("owner", "address") == who(OWNER)

    # An instance nobody initialised yet (the factory never leaves one), called directly.
    code, state = EnglishAuction(), box.state
    fresh = Address(b"\x42" * 20)
    state.set_code(fresh, code_marker("EnglishAuction"))

    def initialize(caller: Address, owner: Address, start: int = 0, end: int = 10**6):
        ctx = CallContext(state, box._env(), box.contracts, fresh, caller, caller, 0, 1_000_000)
        return code.call(ctx, encode_call("initialize(address,uint256,uint256,uint256)",
                                          (owner.to_checksum(), 75, start, end)))

    with pytest.raises(Revert, match="auction: caller is not the factory"):
        initialize(ACCOUNTS[OWNER].address, ACCOUNTS[OWNER].address)
    with pytest.raises(Revert, match="auction: owner is the zero address"):
        initialize(AUCTION_FACTORY, ZERO_ADDRESS)
    initialize(AUCTION_FACTORY, ACCOUNTS[ALICE].address)
    assert EnglishAuction.read(state, fresh)["factory"] == AUCTION_FACTORY.to_checksum().lower()
    with pytest.raises(Revert, match="auction: already initialized"):
        initialize(AUCTION_FACTORY, ACCOUNTS[BOB].address)


# -- Algorithm 1 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("total, leader_bids, highest, binding, expected", [
    (50, False, 100, 40, ("leader", 100, 100)),       # below the highest: binding = min(b + i, h)
    (90, False, 200, 40, ("leader", 200, 165)),
    (150, False, 100, 40, ("bidder", 150, 150)),      # above: binding = min(b, h + i)
    (500, False, 100, 40, ("bidder", 500, 175)),
    (500, True, 100, 40, ("leader", 500, 40)),        # the leader raises its own ceiling for free
])
def test_algorithm_1_as_a_pure_function(total, leader_bids, highest, binding, expected):
    bidder, leader = Address(b"\x01" * 20), Address(b"\x02" * 20)
    if leader_bids:
        bidder = leader
    names = {bidder: "bidder", leader: "leader"}
    new_leader, new_highest, new_binding = next_bid_state(total, bidder, leader, highest, binding, 75)
    assert (names[new_leader], new_highest, new_binding) == expected


def test_a_bid_logs_the_new_standing_and_bids_are_cumulative(box):
    auction = open_auction(box, increment=75)
    first = auction.bid(ALICE, 100)
    assert first.ok and first.decode("bool") == (True,)
    assert auction.events("LogBid", first) == [(who(ALICE), 100, who(ALICE), 100, 75)]   # min(100, 0 + 75)
    second = auction.bid(BOB, 400)                     # above 100: Bob leads, binding min(400, 100 + 75)
    assert auction.events("LogBid", second) == [(who(BOB), 400, who(BOB), 400, 175)]
    third = auction.bid(ALICE, 100)                     # Alice's total 200 ≤ 400: Bob stays, binding min(275, 400)
    assert auction.events("LogBid", third) == [(who(ALICE), 200, who(BOB), 400, 275)]
    fourth = auction.bid(ALICE, 300)                    # total 500 > 400: Alice leads at min(500, 475)
    assert auction.events("LogBid", fourth) == [(who(ALICE), 500, who(ALICE), 500, 475)]
    fifth = auction.bid(ALICE, 1000)                    # the leader raises its ceiling; binding stays
    assert auction.events("LogBid", fifth) == [(who(ALICE), 1500, who(ALICE), 1500, 475)]
    assert (auction.funds(ALICE), auction.funds(BOB)) == (1500, 400)
    assert box.balance(auction.address) == 1900


@pytest.mark.parametrize("value", [75, 120])
def test_a_total_not_above_the_binding_bid_is_too_low(box, value):
    auction = open_auction(box, increment=75)
    assert auction.bid(ALICE, 100).ok and auction.bid(BOB, 120).ok   # binding 120
    balance = box.balance(BOB)
    rejected = auction.bid(CAROL, value)
    assert (rejected.ok, rejected.reason) == (False, "auction: bid too low")
    assert rejected.logs == () and auction.funds(CAROL) == 0
    assert box.balance(BOB) == balance and box.balance(auction.address) == 220
    assert auction.bid(CAROL, 121).ok


def test_the_rejections_and_their_reasons(box):
    auction = open_auction(box, starts_in=3, lasts=5)
    early = auction.bid(ALICE, 100)
    assert (early.ok, early.reason) == (False, "auction: not started")
    while box.number + 1 < auction.get("startBlock"):
        box.mine()
    assert auction.bid(ALICE, 100).ok, "the start block itself takes bids"
    for sender, value, reason in ((OWNER, 500, "auction: owner cannot bid"),
                                  (BOB, 0, "auction: zero bid"),
                                  (OWNER, 0, "auction: owner cannot bid")):
        result = auction.bid(sender, value)
        assert (result.ok, result.reason) == (False, reason)
    not_payable = box.transact(BOB, auction.address, "withdraw()", value=5)
    assert (not_payable.ok, not_payable.reason) == (False, "EnglishAuction: withdraw is not payable")
    while box.number + 1 < auction.get("endBlock"):
        box.mine()
    assert auction.bid(BOB, 200).ok, "the end block itself takes bids"
    late = auction.bid(CAROL, 1000)
    assert (late.ok, late.reason) == (False, "auction: ended")
    assert box.balance(auction.address) == 300


# -- withdrawal by pull --------------------------------------------------------------------------
def test_no_withdrawal_until_the_end_block_has_passed(box):
    auction = open_auction(box, lasts=4)
    assert auction.bid(ALICE, 100).ok and auction.bid(BOB, 300).ok
    senders = (OWNER, ALICE, BOB)
    while box.number + 1 <= auction.get("endBlock"):                 # each attempt is a block
        result = auction.withdraw(senders[box.number % 3])
        assert (result.ok, result.reason) == (False, "auction: not ended")
    assert auction.withdraw(ALICE).ok


@pytest.mark.parametrize("order", [(OWNER, BOB, ALICE), (BOB, OWNER, ALICE), (ALICE, BOB, OWNER)])
def test_the_owner_gets_the_binding_bid_the_winner_its_excess_the_loser_everything(box, order):
    auction = open_auction(box, increment=75)
    assert auction.bid(ALICE, 100).ok and auction.bid(BOB, 400).ok   # Bob wins at min(400, 175) = 175
    auction.run_past_end()
    expected = {OWNER: 175, BOB: 400 - 175, ALICE: 100}
    accounts = {OWNER: BOB, BOB: BOB, ALICE: ALICE}                  # whose funds each withdrawal draws on
    for sender in order:
        before = box.balance(sender)
        result = auction.withdraw(sender)
        assert result.ok and result.decode("bool") == (True,)
        assert box.balance(sender) - before == expected[sender]
        assert auction.events("LogWithdrawal", result) == [(who(sender), who(accounts[sender]), expected[sender])]
        assert box.balance(auction.address) == auction.funds(ALICE) + auction.funds(BOB)
    assert auction.get("ownerHasWithdrawn", "bool") is True
    assert box.balance(auction.address) == 0
    for sender in (OWNER, ALICE, BOB, STRANGER):
        again = auction.withdraw(sender)
        assert (again.ok, again.reason) == (False, "auction: nothing to withdraw"), sender


def test_an_auction_without_bids_pays_nobody(box):
    auction = open_auction(box, lasts=2)
    auction.run_past_end()
    for sender in (OWNER, ALICE):
        result = auction.withdraw(sender)
        assert (result.ok, result.reason) == (False, "auction: nothing to withdraw")
    assert auction.get("ownerHasWithdrawn", "bool") is False


# -- cancel --------------------------------------------------------------------------------------
def test_the_owner_cancels_and_everyone_takes_back_everything(box):
    auction = open_auction(box, increment=75)
    assert auction.bid(ALICE, 100).ok and auction.bid(BOB, 400).ok
    stranger = auction.cancel(ALICE)
    assert (stranger.ok, stranger.reason) == (False, "auction: caller is not the owner")
    canceled = auction.cancel(OWNER)
    assert canceled.ok and canceled.decode("bool") == (True,)
    assert auction.events("LogCanceled", canceled) == [()]
    assert auction.get("canceled", "bool") is True
    twice = auction.cancel(OWNER)
    assert (twice.ok, twice.reason) == (False, "auction: canceled")
    late = auction.bid(CAROL, 1000)
    assert (late.ok, late.reason) == (False, "auction: canceled")
    owner = auction.withdraw(OWNER)
    assert (owner.ok, owner.reason) == (False, "auction: nothing to withdraw")
    for sender, amount in ((BOB, 400), (ALICE, 100)):                 # the leader too: its whole total
        before = box.balance(sender)
        result = auction.withdraw(sender)
        assert result.ok and box.balance(sender) - before == amount
        assert auction.events("LogWithdrawal", result) == [(who(sender), who(sender), amount)]
        again = auction.withdraw(sender)
        assert (again.ok, again.reason) == (False, "auction: nothing to withdraw")
    assert box.balance(auction.address) == 0


def test_no_cancel_after_the_end(box):
    auction = open_auction(box, lasts=3)
    assert auction.bid(ALICE, 100).ok
    while box.number + 1 < auction.get("endBlock"):
        box.mine()
    assert auction.cancel(OWNER).ok, "the end block itself is still before the end"
    other = open_auction(box, lasts=2)
    other.run_past_end()
    late = other.cancel(OWNER)
    assert (late.ok, late.reason) == (False, "auction: ended")


# -- an energy lot (beyond the paper) ---------------------------------------------------------------
CREATE_WITH_ENERGY = "createAuctionWithEnergy(uint256,uint256,uint256,uint256)"


def energy_of(box: Sandbox, who_: Address) -> int:
    return box.call(STRANGER, "EnergyToken", "balanceOf(address)", (who_.to_checksum(),), ("uint256",))[0]


def open_energy_auction(box: Sandbox, wh: int, lasts: int = 5) -> Auction:
    """The owner meters `wh` of generation, mints it, lets the factory escrow it, and opens."""
    owner = ACCOUNTS[OWNER].address.to_checksum()
    slot = box.call(0, "Meters", "currentSlot()", returns=("uint64",))[0]
    assert box.transact(19 + OWNER, "Meters", "postReading(address,uint64,uint256,uint256,uint256)",
                        (owner, slot, wh, 0, 0)).ok
    assert box.transact(19 + OWNER, "EnergyToken", "mintWatts(address,uint256)", (owner, wh)).ok
    assert box.transact(OWNER, "EnergyToken", "approve(address,uint256)", (AUCTION_FACTORY.to_checksum(), wh)).ok
    start = box.number + 1
    result = box.transact(OWNER, "AuctionFactory", CREATE_WITH_ENERGY, (75, start, start + lasts, wh))
    assert result.ok, result.reason
    return Auction(box, result.decode("address")[0])


def test_an_energy_lot_is_escrowed_and_goes_to_the_winner(box):
    auction = open_energy_auction(box, 500)
    assert energy_of(box, auction.address) == 500 and energy_of(box, ACCOUNTS[OWNER].address) == 0
    assert auction.get("energyWh") == 500 and auction.get("energySettled", "bool") is False
    early = box.transact(CAROL, auction.address, "settleEnergy()")
    assert (early.ok, early.reason) == (False, "auction: not ended")
    assert auction.bid(ALICE, 1_000).ok and auction.bid(BOB, 2_000).ok
    auction.run_past_end()
    settled = box.transact(CAROL, auction.address, "settleEnergy()")    # anyone may settle
    assert settled.ok
    assert decoded(ABIS["auction"], "LogEnergySettled", settled.logs, auction.address) == [(who(BOB), 500)]
    assert energy_of(box, ACCOUNTS[BOB].address) == 500 and energy_of(box, auction.address) == 0
    again = box.transact(BOB, auction.address, "settleEnergy()")
    assert (again.ok, again.reason) == (False, "auction: energy already settled")


@pytest.mark.parametrize("bids", [False, True])
def test_an_unsold_or_cancelled_lot_returns_to_the_owner(box, bids):
    auction = open_energy_auction(box, 300)
    if bids:
        assert auction.bid(ALICE, 1_000).ok
        assert auction.cancel(OWNER).ok
    else:
        auction.run_past_end()
    assert box.transact(STRANGER, auction.address, "settleEnergy()").ok
    assert energy_of(box, ACCOUNTS[OWNER].address) == 300 and energy_of(box, ACCOUNTS[ALICE].address) == 0


def test_the_energy_lot_needs_the_allowance_and_only_the_factory_attaches_it(box):
    start = box.number + 1
    unapproved = box.transact(OWNER, "AuctionFactory", CREATE_WITH_ENERGY, (75, start, start + 5, 10))
    assert (unapproved.ok, unapproved.reason) == (False, "energy: insufficient allowance")
    zero = box.transact(OWNER, "AuctionFactory", CREATE_WITH_ENERGY, (75, start, start + 5, 0))
    assert (zero.ok, zero.reason) == (False, "factory: zero energy")
    plain = open_auction(box)
    forged = box.transact(OWNER, plain.address, "attachEnergy(address,uint256)", (who(OWNER), 10))
    assert (forged.ok, forged.reason) == (False, "auction: caller is not the factory")
    nothing = box.transact(OWNER, plain.address, "settleEnergy()")
    assert (nothing.ok, nothing.reason) == (False, "auction: no energy on sale")


# -- paper 004, Table 1 ---------------------------------------------------------------------------
def test_table_1_replayed(box, capsys):
    """Account1 opens the auction (bidIncrement 75, startBlock 1, endBlock 100000); Account2
    bids 40 wei, Account3 1 gwei, Account2 another 1 gwei (total 1 gwei + 40 wei), Account3
    another 100 wei and wins: highest bid 1,000,000,100 wei."""
    created = box.transact(OWNER, "AuctionFactory", CREATE, (75, 1, 100_000))
    assert created.ok
    auction = Auction(box, created.decode("address")[0])
    gas = {"deploy": created.gas_used}
    paper_account = {2: ALICE, 3: BOB}
    for step, sender, value, leader, highest, binding in TABLE_1:
        result = auction.bid(paper_account[sender], value)
        assert result.ok, result.reason
        gas[step] = result.gas_used
        assert auction.get("highestBidder", "address") == who(paper_account[leader]), step
        assert (auction.get("highestBid"), auction.get("highestBindingBid")) == (highest, binding), step
    assert auction.get("highestBid") == 1_000_000_100
    assert box.balance(auction.address) == 2 * GWEI + 140 == auction.funds(ALICE) + auction.funds(BOB)
    with capsys.disabled():
        print_gas("Table 1 replayed", gas)
        print("  (a first bid stores highestBid as well, which the Solidity original computes)")
    box.number = auction.get("endBlock")               # 99,990 quiet blocks later
    for sender, amount in ((OWNER, GWEI + 100), (BOB, 0), (ALICE, GWEI + 40)):
        before = box.balance(sender)
        result = auction.withdraw(sender)
        assert result.ok == (amount > 0), (sender, result.reason)
        assert box.balance(sender) - before == amount
    assert box.balance(auction.address) == 0


def test_a_producer_orders_bids_by_the_total_they_make(box):
    """The producer's ordering key, read gas-free: funds already in plus the value sent. Bids
    applied in ascending order of it all land, where arrival order would reject some."""
    auction = open_auction(box, increment=10)
    assert auction.bid(ALICE, 100).ok
    pending = [(BOB, 300), (CAROL, 150), (ALICE, 60)]                 # as they reached the pool
    keys = {sender: EnglishAuction.bid_total(box.state, auction.address, ACCOUNTS[sender].address, value)
            for sender, value in pending}
    assert keys == {BOB: 300, CAROL: 150, ALICE: 160}
    for sender, value in sorted(pending, key=lambda bid: keys[bid[0]]):
        assert auction.bid(sender, value).ok
    assert auction.get("highestBidder", "address") == who(BOB)
    assert encode_call("placeBid()")[:4] == PLACE_BID

    in_arrival_order = open_auction(box, increment=10)
    assert in_arrival_order.bid(ALICE, 100).ok
    outcomes = [in_arrival_order.bid(sender, value) for sender, value in pending]
    assert [(r.ok, r.reason) for r in outcomes] == [(True, None), (True, None), (False, "auction: bid too low")]
