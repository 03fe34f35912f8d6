"""Conservation of an English auction's elecoins over random bid / withdraw / cancel sequences:
the auction's balance equals the sum of `fundsByBidder` after every transaction, every
party is paid exactly what Algorithm 1 owes it, and once everyone has withdrawn the auction
holds nothing. The example budget is small for CI; raise it with GRIDNODE_FUZZ_EXAMPLES."""
from __future__ import annotations

import functools
import os

from hypothesis import given, settings
from hypothesis import strategies as st
from market.contracts.auction import EnglishAuction
from market_sandbox import ACCOUNTS, Sandbox
from test_auction import ALICE, BOB, CAROL, CREATE, OWNER, STRANGER, auction_box
from vm.types import Address

EXAMPLES = int(os.environ.get("GRIDNODE_FUZZ_EXAMPLES", "100"))
PARTIES = (OWNER, ALICE, BOB, CAROL, STRANGER)
BIDDERS = (ALICE, BOB, CAROL)

actions = st.lists(st.one_of(
    st.tuples(st.just("bid"), st.sampled_from(BIDDERS + (OWNER,)), st.integers(0, 400)),
    st.tuples(st.just("bid"), st.sampled_from(BIDDERS), st.integers(10**18, 2 * 10**18)),  # large amounts too
    st.tuples(st.just("withdraw"), st.sampled_from(PARTIES), st.just(0)),
    st.tuples(st.just("cancel"), st.sampled_from((OWNER, ALICE)), st.just(0)),
    st.tuples(st.just("mine"), st.just(OWNER), st.just(0)),
), max_size=30)


@functools.cache
def shared_box() -> Sandbox:
    """One chain for every example; each example opens its own auction on it."""
    return auction_box()


def funds(box: Sandbox, auction: Address) -> dict[int, int]:
    return {party: EnglishAuction.funds_at(box.state, auction, ACCOUNTS[party].address) for party in PARTIES}


def conserved(box: Sandbox, auction: Address) -> None:
    assert box.balance(auction) == sum(funds(box, auction).values())


@settings(max_examples=EXAMPLES, deadline=None)
@given(increment=st.integers(0, 200), lasts=st.integers(2, 15), steps=actions,
       withdrawal_order=st.permutations(PARTIES))
def test_the_auction_balance_is_the_sum_of_the_funds_and_ends_at_zero(increment, lasts, steps, withdrawal_order):
    box = shared_box()
    start = box.number + 1
    created = box.transact(OWNER, "AuctionFactory", CREATE, (increment, start, start + lasts))
    assert created.ok, created.reason
    auction = Address.from_hex(created.decode("address")[0])
    bid = {party: 0 for party in PARTIES}          # elecoins each party's accepted bids sent
    received = {party: 0 for party in PARTIES}     # elecoins each party's withdrawals paid it

    def withdraw(party: int) -> None:
        before = box.balance(party)
        result = box.transact(party, auction, "withdraw()")
        assert result.ok or result.reason in ("auction: nothing to withdraw", "auction: not ended"), result.reason
        received[party] += box.balance(party) - before

    for action, party, value in steps:
        if action == "bid":
            result = box.transact(party, auction, "placeBid()", value=value)
            if result.ok:
                bid[party] += value
            else:
                assert result.reason in ("auction: bid too low", "auction: zero bid", "auction: owner cannot bid",
                                         "auction: ended", "auction: canceled"), result.reason
        elif action == "withdraw":
            withdraw(party)
        elif action == "cancel":
            result = box.transact(party, auction, "cancelAuction()")
            assert result.ok or result.reason in ("auction: caller is not the owner", "auction: ended",
                                                  "auction: canceled"), result.reason
        else:
            box.mine()
        conserved(box, auction)

    final = EnglishAuction.read(box.state, auction)
    box.number = max(box.number, final["endBlock"])   # let the bidding window close
    for _ in range(2):                                 # everyone withdraws, then tries again
        for party in withdrawal_order:
            withdraw(party)
            conserved(box, auction)
    assert box.balance(auction) == 0
    assert set(funds(box, auction).values()) == {0}

    # Each party was paid exactly what Algorithm 1 owes it.
    if final["canceled"]:
        owed = dict(bid)
    else:
        winner = next((p for p in BIDDERS if ACCOUNTS[p].address == Address.from_hex(final["highestBidder"])), None)
        binding = final["highestBindingBid"]
        owed = {party: bid[party] - (binding if party == winner else 0) for party in PARTIES}
        owed[OWNER] = binding if winner is not None else 0
    assert received == owed
    assert bid[OWNER] == 0 and bid[STRANGER] == 0
