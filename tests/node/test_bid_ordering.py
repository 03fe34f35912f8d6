"""The producer's bid ordering (node/bid_order.py): bids that all top the state their
bidders saw reach the pool in an adversarial order (the highest pays the highest tip, so
the pool offers them highest first) and are put in one block. With the policy on every
one lands, in ascending total; with it off most revert `bid too low`. A sender's nonce
order holds, other transactions go in as before, and a validator imports the block
whatever the order of its bids: the policy is not a consensus rule."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import eth_abi
import pytest
from consensus.engine import Signer
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import dev_accounts, devnet_genesis_document
from market.contracts.auction import PLACE_BID, EnglishAuction
from market.contracts.auction_factory import AUCTION_FACTORY, AuctionFactory
from node.bid_order import BidOrder
from node.chain import Chain
from node.mempool import Mempool
from node.producer import produce_block
from node.store import Store
from vm.blocks import Block
from vm.crypto import keccak256
from vm.native.contract import encode_call
from vm.transactions import decode_transaction
from vm.types import Address

SIGNER = Signer(b"\x07" * 32)
ACCOUNTS = [Account.from_key(a.private_key) for a in dev_accounts(20)]
OWNER = ACCOUNTS[1]
BIDDERS = ACCOUNTS[2:14]
MILLI = 10**15
"""Bids are in thousandths of an elecoin."""
INCREMENT = MILLI // 2
LOG_BID = keccak256(b"LogBid(address,uint256,address,uint256,uint256)")
SINK = "0x" + "22" * 20


def open_chain(path) -> Chain:
    genesis = Genesis.from_json(devnet_genesis_document(SIGNER.address))
    return Chain(Store(str(path)), genesis, genesis.create_engine())


def signed(chain: Chain, account, nonce: int, to: str, data: bytes = b"", value: int = 0, gas: int = 21_000,
           tip: int = 10**9):
    base_fee = chain.environment(chain.head, 0, SIGNER.address).base_fee
    return decode_transaction(bytes(account.sign_transaction({
        "type": 2, "chainId": chain.chain_id, "nonce": nonce, "to": to, "value": value, "data": data, "gas": gas,
        "maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}).raw_transaction))


def nonce_of(chain: Chain, account) -> int:
    return chain.state().get_account(Address.from_hex(account.address)).nonce


def bid(chain: Chain, account, value: int, tip: int, nonce: int | None = None):
    nonce = nonce_of(chain, account) if nonce is None else nonce
    return signed(chain, account, nonce, auction_address(chain).to_checksum(), PLACE_BID, value, 200_000, tip)


def produce(chain: Chain, txs, bid_ordering: bool = True) -> Block:
    mempool = Mempool(chain.chain_id, chain.genesis.gas_limit)
    base_fee = chain.environment(chain.head, 0, SIGNER.address).base_fee
    for tx in txs:
        mempool.add(tx, chain.state(), base_fee)
    timestamp = max(chain.head.timestamp + 1, int(time.time()) - 30)
    return produce_block(chain, mempool, SIGNER, timestamp, bid_ordering=bid_ordering).block


def auction_address(chain: Chain) -> Address:
    return AuctionFactory.auctions_at(chain.state(), AUCTION_FACTORY)[-1]


def open_auction(chain: Chain) -> Address:
    start = chain.head.number + 2
    create = encode_call("createAuction(uint256,uint256,uint256)", (INCREMENT, start, start + 1000))
    block = produce(chain, [signed(chain, OWNER, nonce_of(chain, OWNER), AUCTION_FACTORY.to_checksum(), create,
                                   gas=2_000_000)])
    assert all(r.succeeded for r in chain.receipts(block.hash)), "the factory opened the auction"
    return auction_address(chain)


def outcomes(chain: Chain, block: Block) -> list[tuple]:
    """(sender, nonce, is a bid, value, succeeded, LogBid total or None) per transaction, in block order."""
    auction = auction_address(chain)
    rows = []
    for tx, receipt in zip(block.transactions, chain.receipts(block.hash)):
        totals = [eth_abi.decode(["uint256", "address", "uint256", "uint256"], log.data)[0]
                  for log in receipt.logs if log.address == auction and log.topics[0] == LOG_BID]
        rows.append((tx.sender, tx.nonce, tx.data[:4] == PLACE_BID and tx.to == auction, tx.value,
                     receipt.succeeded, totals[0] if totals else None))
    return rows


def adversarial_bids(chain: Chain, count: int, seed: int) -> list:
    """`count` bidders' first bids, totals 1..count thousandths (each tops the empty auction
    their bidders saw), the highest with the highest tip, handed to the pool in shuffled order."""
    txs = [bid(chain, BIDDERS[i], (i + 1) * MILLI, tip=(i + 1) * 10**9) for i in range(count)]
    random.Random(seed).shuffle(txs)
    return txs


@pytest.fixture
def chain(tmp_path):
    opened = open_chain(tmp_path / "producer")
    open_auction(opened)
    produce(opened, [])  # the auction's start block
    yield opened
    opened.store.close()


def test_ascending_but_shuffled_bids_all_land_with_the_ordering_on(chain):
    block = produce(chain, adversarial_bids(chain, 10, seed=4))
    rows = outcomes(chain, block)
    assert len(rows) == 10 and all(ok for *_, ok, _ in rows), "every bid landed"
    totals = [total for *_, total in rows]
    assert totals == sorted(totals) == [(i + 1) * MILLI for i in range(10)], "in ascending total"
    state = EnglishAuction.read(chain.state(), auction_address(chain))
    assert state["highestBidder"].lower() == BIDDERS[9].address.lower()
    assert (state["highestBid"], state["highestBindingBid"]) == (10 * MILLI, 9 * MILLI + INCREMENT)


def test_with_the_ordering_off_the_pool_order_rejects_bids_too_low(chain):
    block = produce(chain, adversarial_bids(chain, 10, seed=4), bid_ordering=False)
    rows = outcomes(chain, block)
    assert [value for _, _, _, value, _, _ in rows] == [(10 - i) * MILLI for i in range(10)], "highest tip first"
    landed = [value for _, _, _, value, ok, _ in rows if ok]
    refused = [value for _, _, _, value, ok, _ in rows if not ok]
    assert landed == [10 * MILLI, 9 * MILLI] and len(refused) == 8
    binding = EnglishAuction.read(chain.state(), auction_address(chain))["highestBindingBid"]
    assert binding == 9 * MILLI + INCREMENT
    # Every refused total is at most the binding bid it met: Algorithm 1's `bid too low`.
    assert all(value <= binding for value in refused)


def test_a_bidder_keeps_its_nonce_order_and_other_transactions_are_unaffected(chain):
    alice, bob, carol = BIDDERS[0], BIDDERS[1], BIDDERS[2]
    a, b, c = nonce_of(chain, alice), nonce_of(chain, bob), nonce_of(chain, carol)
    txs = [
        bid(chain, alice, 5 * MILLI, tip=9 * 10**9, nonce=a),        # alice 5, then tops up to 12
        bid(chain, alice, 7 * MILLI, tip=9 * 10**9, nonce=a + 1),
        signed(chain, alice, a + 2, SINK, value=1, tip=9 * 10**9),   # alice's transfer waits for her bids
        bid(chain, bob, 8 * MILLI, tip=5 * 10**9, nonce=b),
        signed(chain, carol, c, SINK, value=2, tip=10**9),            # a transfer of a non-bidder
        bid(chain, carol, 3 * MILLI, tip=10**9, nonce=c + 1),
    ]
    block = produce(chain, txs)
    rows = outcomes(chain, block)
    order = [(Address(sender), nonce) for sender, nonce, *_ in rows]
    sender = {Address.from_hex(x.address): x for x in (alice, bob, carol)}
    assert all(ok for *_, ok, _ in rows), rows
    assert order[0] == (Address.from_hex(carol.address), c), "a transfer of a sender with no held bid goes first"
    bids = [(sender[Address(s)], total) for s, _, is_bid, _, _, total in rows if is_bid]
    assert bids == [(carol, 3 * MILLI), (alice, 5 * MILLI), (bob, 8 * MILLI), (alice, 12 * MILLI)]
    nonces = {}
    for s, nonce in order:
        assert nonces.get(s, -1) < nonce, "each sender's transactions in nonce order"
        nonces[s] = nonce
    assert order[-1] == (Address.from_hex(alice.address), a + 2), "alice's transfer right after her last bid"
    assert chain.state().get_balance(Address.from_hex(SINK)) == 3


def test_the_policy_ignores_blocks_without_bids(chain):
    """A transfer, or a call with another selector to the auction, is never held."""
    state = chain.state()
    held = BidOrder(chain.contracts)
    someone = ACCOUNTS[15]
    transfer = signed(chain, someone, nonce_of(chain, someone), SINK, value=1)
    not_a_bid = signed(chain, someone, nonce_of(chain, someone), auction_address(chain).to_checksum(),
                       encode_call("withdraw()"), gas=100_000)
    placebid_elsewhere = signed(chain, someone, nonce_of(chain, someone), SINK, PLACE_BID, 1, 100_000)
    assert not any(held.hold(state, tx) for tx in (transfer, not_a_bid, placebid_elsewhere))
    assert len(held) == 0


@pytest.mark.parametrize("bid_ordering", [True, False])
def test_a_validator_imports_a_block_whatever_the_order_of_its_bids(chain, tmp_path, bid_ordering):
    follower = open_chain(tmp_path / "follower")
    try:
        number = chain.head.number
        block = produce(chain, adversarial_bids(chain, 6, seed=9), bid_ordering=bid_ordering)
        for height in range(1, number + 2):  # the auction, its start block, then the bids
            follower.import_block(chain.block(chain.header_by_number(height).hash))
        assert follower.head.hash == block.hash
        assert follower.state_db.root == chain.state_db.root == block.header.state_root
        assert follower.receipts(block.hash) == chain.receipts(block.hash)
    finally:
        follower.store.close()


@pytest.mark.slow
@pytest.mark.few_nodes  # two devnets
def test_the_bench_on_two_devnets_lands_every_bid_only_with_the_ordering_on():
    """bench/auction.py end to end: it starts `gridnode start` and `gridnode start
    --no-bid-ordering`, and 10 bidders bid at once on the same state, through eth_* only."""
    bench = Path(__file__).parents[2] / "bench" / "auction.py"
    done = subprocess.run([sys.executable, str(bench), "--levels", "10", "--modes", "same", "--bids-per-bidder", "1",
                           "--json"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    on, off = (target["results"][0] for target in json.loads(done.stdout)["targets"])
    assert (on["sent"], on["accepted"], on["rejected"], on["refused"], on["lost"]) == (10, 10, {}, {}, 0)
    assert off["sent"] == 10 and off["lost"] == 0 and off["refused"] == {}
    assert off["accepted"] < 10 and set(off["rejected"]) == {"bid too low"}, off
    assert off["accepted"] + off["rejected"]["bid too low"] == 10
    assert (on["missed"], off["missed"]) == (0, off["rejected"]["bid too low"]), "each refused bid topped the state"
