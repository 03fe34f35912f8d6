"""An English auction as a dApp uses one over JSON-RPC: the factory's `createAuction` opens
it, `AuctionCreated` says where, bidders send elecoins with `placeBid`, and after the end
block everyone pulls what Algorithm 1 owes them. The auction's ABI comes from
`grid_contracts` (an instance-only kind, address null)."""
from __future__ import annotations

import time

from paper004 import GWEI, TABLE_1, print_gas
from wallet import ACCOUNTS, assert_reverts, events, transact

OWNER, ALICE, BOB = ACCOUNTS[5], ACCOUNTS[6], ACCOUNTS[7]


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


def open_through_factory(w3, market, owner, increment: int, start: int, end: int):
    receipt = transact(w3, owner, market["AuctionFactory"].functions.createAuction(increment, start, end))
    ((address, _owner),) = events(market["AuctionFactory"], "AuctionCreated", receipt)
    return w3.eth.contract(address=address, abi=market["EnglishAuction"].abi), receipt


def test_every_rejection_reaches_the_wallet_with_its_reason(w3, market):
    """Each of Algorithm 1's refusals, as eth_call and eth_estimateGas report it."""
    now = w3.eth.block_number
    later, _ = open_through_factory(w3, market, OWNER, 75, now + 50, now + 60)
    assert_reverts(ALICE, later.functions.placeBid(), "auction: not started", value=GWEI)
    assert_reverts(ALICE, later.functions.cancelAuction(), "auction: caller is not the owner")

    running, _ = open_through_factory(w3, market, OWNER, 75, now, now + 8)
    assert_reverts(ALICE, running.functions.placeBid(), "auction: zero bid")
    assert_reverts(OWNER, running.functions.placeBid(), "auction: owner cannot bid", value=GWEI)
    transact(w3, ALICE, running.functions.placeBid(), value=1_000)
    assert running.functions.highestBindingBid().call() == 75
    assert_reverts(BOB, running.functions.placeBid(), "auction: bid too low", value=75)
    assert_reverts(ALICE, running.functions.withdraw(), "auction: not ended")

    canceled, _ = open_through_factory(w3, market, OWNER, 75, now, now + 60)
    assert events(canceled, "LogCanceled", transact(w3, OWNER, canceled.functions.cancelAuction())) == [()]
    assert canceled.functions.canceled().call() is True
    assert_reverts(ALICE, canceled.functions.placeBid(), "auction: canceled", value=GWEI)
    assert_reverts(OWNER, canceled.functions.cancelAuction(), "auction: canceled")
    assert_reverts(ALICE, canceled.functions.withdraw(), "auction: nothing to withdraw")

    wait_for_block(w3, running.functions.endBlock().call() + 1)
    assert_reverts(BOB, running.functions.placeBid(), "auction: ended", value=GWEI)
    assert_reverts(OWNER, running.functions.cancelAuction(), "auction: ended")
    assert_reverts(BOB, running.functions.withdraw(), "auction: nothing to withdraw")


def test_table_1_replayed_over_json_rpc(w3, market, capsys):
    """bidIncrement 75 from block 1; Account2 bids 40 wei, Account3 1 gwei, Account2 another
    1 gwei, Account3 another 100 wei and wins with 1,000,000,100 wei at that binding price."""
    paper_account = {1: ACCOUNTS[8], 2: ACCOUNTS[9], 3: ACCOUNTS[10]}
    auction, created = open_through_factory(w3, market, paper_account[1], 75, 1, 100_000)
    gas = {"deploy": created.gasUsed}
    totals = {2: 0, 3: 0}
    for step, sender, value, leader, highest, binding in TABLE_1:
        receipt = transact(w3, paper_account[sender], auction.functions.placeBid(), value=value)
        gas[step] = receipt.gasUsed
        totals[sender] += value
        assert events(auction, "LogBid", receipt) == [(paper_account[sender].address, totals[sender],
                                                       paper_account[leader].address, highest, binding)], step
    assert auction.functions.highestBidder().call() == paper_account[3].address
    assert auction.functions.highestBid().call() == 1_000_000_100
    assert auction.functions.highestBindingBid().call() == 1_000_000_100
    assert w3.eth.get_balance(auction.address) == 2 * GWEI + 140
    assert auction.functions.fundsByBidder(paper_account[2].address).call() == GWEI + 40
    with capsys.disabled():
        print_gas("Table 1 over JSON-RPC", gas)
