"""An English auction as a dApp uses one over JSON-RPC: the factory's `createAuction` opens
it, `AuctionCreated` says where, bidders send elecoins with `placeBid`, and after the end
block everyone pulls what Algorithm 1 owes them. The auction's ABI comes from
`grid_contracts` (an instance-only kind, address null)."""
from __future__ import annotations

import time

from wallet import ACCOUNTS, assert_reverts, events, transact

OWNER, ALICE, BOB = ACCOUNTS[5], ACCOUNTS[6], ACCOUNTS[7]
GWEI = 10**9


def wait_for_block(w3, number: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while w3.eth.block_number < number:
        assert time.monotonic() < deadline, f"block {number} not reached"
        time.sleep(0.2)


def test_an_auction_opened_through_the_factory_takes_bids_and_pays_out(w3, market):
    factory = market["AuctionFactory"]
    assert w3.provider.make_request("grid_contracts", [])["result"]["EnglishAuction"]["address"] is None
    start = w3.eth.block_number
    receipt = transact(w3, OWNER, factory.functions.createAuction(75, start, start + 6))
    ((address, owner),) = events(factory, "AuctionCreated", receipt)
    assert owner == OWNER.address and w3.eth.get_code(address).startswith(b"\xfegridnode native contract")
    assert factory.functions.auctionsOf(OWNER.address).call() == [address]
    auction = w3.eth.contract(address=address, abi=market["EnglishAuction"].abi)
    assert auction.functions.owner().call() == OWNER.address

    assert_reverts(OWNER, auction.functions.placeBid(), "auction: owner cannot bid", value=GWEI)
    bid = transact(w3, ALICE, auction.functions.placeBid(), value=GWEI)
    assert bid.status == 1
    assert events(auction, "LogBid", bid) == [(ALICE.address, GWEI, ALICE.address, GWEI, 75)]  # min(bid, 0 + 75)
    assert transact(w3, BOB, auction.functions.placeBid(), value=2 * GWEI).status == 1
    assert auction.functions.highestBidder().call() == BOB.address
    assert auction.functions.highestBindingBid().call() == GWEI + 75
    assert w3.eth.get_balance(address) == 3 * GWEI
    assert_reverts(ALICE, auction.functions.withdraw(), "auction: not ended")

    wait_for_block(w3, start + 7)
    before = w3.eth.get_balance(ALICE.address)
    pulled = transact(w3, ALICE, auction.functions.withdraw())
    assert events(auction, "LogWithdrawal", pulled) == [(ALICE.address, ALICE.address, GWEI)]
    assert w3.eth.get_balance(ALICE.address) == before + GWEI - pulled.gasUsed * pulled.effectiveGasPrice
    assert transact(w3, OWNER, auction.functions.withdraw()).status == 1
    assert transact(w3, BOB, auction.functions.withdraw()).status == 1
    assert w3.eth.get_balance(address) == 0
    assert_reverts(BOB, auction.functions.withdraw(), "auction: nothing to withdraw")
