"""Offers (paper 002's trading contract) as wallets use it over JSON-RPC: public info, offers
escrowing energy tokens, partial allocations, fiat escrow, settlement on the buyer's metered
delivery, refunds after expiry and cancellation - each state change, event and revert reason.
Prices are fiat base units (cents) per kWh; an allocation costs ceil(Wh · price / 1000) cents.
Then the genesis params, the open list, the rounding and an instance's own token addresses
in process."""
from __future__ import annotations

import time

import pytest
import wallet
from market.contracts.offers import TOKEN_ADDRESSES, Offers, cost_of
from market.contracts.params import as_address
from vm.types import Address
from wallet import ACCOUNTS, assert_reverts, events, oracle_of

ALLOCATED, ESCROWED, COMPLETED, REFUNDED = 1, 2, 3, 4
EXCEEDS = "offers: allocation exceeds the offered amount"
NOT_DELIVERED = "offers: delivery not confirmed by the buyer's meter"


def transact(w3, account, call):
    receipt = wallet.transact(w3, account, call)
    assert receipt.status == 1, f"{call.fn_name} failed"
    return receipt


def now(w3) -> int:
    return w3.eth.get_block("latest").timestamp


def post_reading(w3, market, index: int, generation_wh: int, consumption_wh: int) -> int:
    """Prosumer #index's oracle posts a reading in a slot not yet used (the current one or,
    once that is taken, earlier ones: past slots are allowed)."""
    meters, prosumer = market["Meters"], ACCOUNTS[index].address
    slot = meters.functions.currentSlot().call()
    while meters.functions.reading(prosumer, slot).call()[0]:
        slot -= 1
    transact(w3, oracle_of(index), meters.functions.postReading(prosumer, slot, generation_wh, consumption_wh, 0))
    return slot


def give_energy(w3, market, index: int, wh: int) -> None:
    """Meter prosumer #index's generation and mint it to the prosumer (paper 002's MintWatts)."""
    post_reading(w3, market, index, wh, 0)
    transact(w3, oracle_of(index), market["EnergyToken"].functions.mintWatts(ACCOUNTS[index].address, wh))


def make_offer(w3, market, index: int, amount_wh: int, price: int, expiry: int) -> int:
    seller, offers = ACCOUNTS[index], market["Offers"]
    transact(w3, seller, market["EnergyToken"].functions.approve(offers.address, amount_wh))
    receipt = transact(w3, seller, offers.functions.makeOffer(amount_wh, price, expiry))
    return events(offers, "OfferMade", receipt)[0][0]


def allocate_and_escrow(w3, market, index: int, offer_id: int, amount_wh: int) -> int:
    buyer, offers = ACCOUNTS[index], market["Offers"]
    receipt = transact(w3, buyer, offers.functions.allocateEnergy(offer_id, amount_wh))
    allocation_id = events(offers, "EnergyAllocated", receipt)[0][0]
    cost = offers.functions.allocation(allocation_id).call()[3]
    transact(w3, buyer, market["FiatToken"].functions.approve(offers.address, cost))
    transact(w3, buyer, offers.functions.allowTransaction(allocation_id))
    return allocation_id


def balances(market, *accounts) -> list[tuple[int, int]]:
    """(fiat, energy) of each account."""
    return [(market["FiatToken"].functions.balanceOf(a).call(), market["EnergyToken"].functions.balanceOf(a).call())
            for a in accounts]


def test_publish_and_get_info(w3, offers):
    house = ACCOUNTS[1]
    assert offers.functions.getInfo(house.address).call() == ["", "", "", 0]
    receipt = transact(w3, house, offers.functions.publishInfo("house-1", "prosumer", "https://agents.example/h1"))
    assert events(offers, "InfoPublished", receipt) == [
        (house.address, "house-1", "prosumer", "https://agents.example/h1")]
    block_time = w3.eth.get_block(receipt.blockNumber).timestamp
    assert offers.functions.getInfo(house.address).call() == [
        "house-1", "prosumer", "https://agents.example/h1", block_time]
    transact(w3, house, offers.functions.publishInfo("house-1", "consumer", ""))  # an update replaces it
    assert offers.functions.getInfo(house.address).call()[:3] == ["house-1", "consumer", ""]

    assert_reverts(house, offers.functions.publishInfo("", "consumer", ""), "offers: empty name")
    assert_reverts(house, offers.functions.publishInfo("h", "windmill", ""),
                   "offers: kind must be one of consumer, producer, prosumer, operator")
    assert_reverts(house, offers.functions.publishInfo("x" * 65, "consumer", ""), "offers: name longer than 64 bytes")
    assert_reverts(house, offers.functions.publishInfo("h", "consumer", "u" * 257),
                   "offers: endpoint longer than 256 bytes")


def test_make_offer_escrows_the_energy_tokens(w3, market, offers):
    seller = ACCOUNTS[2]
    give_energy(w3, market, 2, 5_000)
    count = offers.functions.offerCount().call()
    (fiat_before, _), = balances(market, seller.address)
    expiry = now(w3) + 3_600
    transact(w3, seller, market["EnergyToken"].functions.approve(offers.address, 3_000))
    receipt = transact(w3, seller, offers.functions.makeOffer(3_000, 25, expiry))  # 0.25 GUSD/kWh

    assert events(offers, "OfferMade", receipt) == [(count, seller.address, 3_000, 25, expiry)]
    transfers = events(market["EnergyToken"], "Transfer", receipt)
    assert transfers == [(seller.address, offers.address, 3_000)]
    assert offers.functions.offerCount().call() == count + 1
    assert offers.functions.offer(count).call() == [seller.address, 3_000, 3_000, 25, expiry, True]
    assert count in offers.functions.openOffers().call()
    assert balances(market, seller.address) == [(fiat_before, 2_000)]
    assert market["EnergyToken"].functions.balanceOf(offers.address).call() >= 3_000


def test_make_offer_reverts(w3, market, offers):
    seller, oracle = ACCOUNTS[3], oracle_of(3)
    give_energy(w3, market, 3, 1_000)
    later = now(w3) + 3_600
    assert_reverts(seller, offers.functions.makeOffer(0, 25, later), "offers: zero amount")
    assert_reverts(seller, offers.functions.makeOffer(100, 0, later), "offers: zero price")
    assert_reverts(seller, offers.functions.makeOffer(100, 25, now(w3) - 1), "offers: expiry is not in the future")
    assert_reverts(seller, offers.functions.makeOffer(2**255, 25, later), "offers: amount times price overflows")
    assert_reverts(seller, offers.functions.makeOffer(1_001, 25, later), "offers: seller has not enough energy tokens")
    assert_reverts(oracle, offers.functions.makeOffer(100, 25, later), "offers: caller may not sell energy")
    assert_reverts(seller, offers.functions.makeOffer(100, 25, later), "energy: insufficient allowance")
    assert_reverts(seller, offers.functions.offer(10**6), "offers: no such offer")


def test_partial_allocation_escrow_and_settlement_on_metered_delivery(w3, market, offers):
    seller, buyer, other = ACCOUNTS[4], ACCOUNTS[5], ACCOUNTS[6]
    give_energy(w3, market, 4, 1_000)
    expiry = now(w3) + 3_600
    offer_id = make_offer(w3, market, 4, 1_000, 27, expiry)  # 0.27 GUSD/kWh
    assert_reverts(buyer, offers.functions.allocateEnergy(offer_id, 1_001), EXCEEDS)
    assert_reverts(buyer, offers.functions.allocateEnergy(offer_id, 0), "offers: zero amount")
    assert_reverts(seller, offers.functions.allocateEnergy(offer_id, 10), "offers: seller cannot buy its own offer")
    assert_reverts(ACCOUNTS[0], offers.functions.allocateEnergy(offer_id, 10), "offers: buyer has no registered meter")
    assert_reverts(oracle_of(5), offers.functions.allocateEnergy(offer_id, 10), "offers: caller may not buy energy")
    assert_reverts(buyer, offers.functions.allocateEnergy(10**6, 10), "offers: no such offer")

    # A partial allocation: 600 of the 1,000 Wh, at the offer's price: 0.6 kWh × 27 cents = 16.2 cents,
    # rounded up to 17 and fixed in the allocation.
    receipt = transact(w3, buyer, offers.functions.allocateEnergy(offer_id, 600))
    ((allocation_id, offer_seen, buyer_seen, wh, cost),) = events(offers, "EnergyAllocated", receipt)
    assert (offer_seen, buyer_seen, wh, cost) == (offer_id, buyer.address, 600, 17)
    assert offers.functions.offer(offer_id).call() == [seller.address, 1_000, 400, 27, expiry, True]
    consumed = market["Meters"].functions.totalConsumption(buyer.address).call()
    assert offers.functions.allocation(allocation_id).call() == [offer_id, buyer.address, 600, 17, consumed,
                                                                 ALLOCATED]
    assert offers.functions.allocationCount().call() == allocation_id + 1
    assert_reverts(other, offers.functions.allocateEnergy(offer_id, 401), EXCEEDS)

    # Pay before escrow, then escrow: the buyer's fiat moves into the contract.
    assert_reverts(buyer, offers.functions.makeTransaction(allocation_id), "offers: payment not escrowed")
    assert_reverts(other, offers.functions.allowTransaction(allocation_id), "offers: caller is not the buyer")
    assert_reverts(buyer, offers.functions.allowTransaction(allocation_id), "fiat: insufficient allowance")
    transact(w3, buyer, market["FiatToken"].functions.approve(offers.address, 16))
    assert_reverts(buyer, offers.functions.allowTransaction(allocation_id), "fiat: insufficient allowance")
    transact(w3, buyer, market["FiatToken"].functions.approve(offers.address, 17))
    receipt = transact(w3, buyer, offers.functions.allowTransaction(allocation_id))
    assert events(offers, "TransactionAllowed", receipt) == [(allocation_id, buyer.address, 17)]
    assert events(market["FiatToken"], "Transfer", receipt) == [(buyer.address, offers.address, 17)]
    assert offers.functions.allocation(allocation_id).call()[5] == ESCROWED
    assert_reverts(buyer, offers.functions.allowTransaction(allocation_id), "offers: payment already escrowed")

    # Pay before delivery: the buyer's meter has not yet shown the energy.
    assert offers.functions.deliveryOf(allocation_id).call() == [0, False]
    assert_reverts(seller, offers.functions.makeTransaction(allocation_id),
                   NOT_DELIVERED)
    post_reading(w3, market, 5, 0, 250)
    assert offers.functions.deliveryOf(allocation_id).call() == [250, False]
    assert_reverts(seller, offers.functions.makeTransaction(allocation_id),
                   NOT_DELIVERED)
    post_reading(w3, market, 5, 0, 400)
    assert offers.functions.deliveryOf(allocation_id).call() == [650, True]

    before = balances(market, seller.address, buyer.address, offers.address)
    receipt = transact(w3, other, offers.functions.makeTransaction(allocation_id))  # anyone may trigger it
    assert events(offers, "TransactionMade", receipt) == [(allocation_id, seller.address, buyer.address, 600, 17)]
    assert events(market["FiatToken"], "Transfer", receipt) == [(offers.address, seller.address, 17)]
    assert events(market["EnergyToken"], "Transfer", receipt) == [(offers.address, buyer.address, 600)]
    after = balances(market, seller.address, buyer.address, offers.address)
    assert after[0] == (before[0][0] + 17, before[0][1])
    assert after[1] == (before[1][0], before[1][1] + 600)
    assert after[2] == (before[2][0] - 17, before[2][1] - 600)
    assert offers.functions.allocation(allocation_id).call()[5] == COMPLETED
    assert offers.functions.deliveryOf(allocation_id).call() == [600, True]
    assert offers.functions.creditedOf(buyer.address).call() == consumed + 600
    assert_reverts(seller, offers.functions.makeTransaction(allocation_id), "offers: allocation already settled")
    assert_reverts(seller, offers.functions.refund(allocation_id), "offers: allocation already settled")

    # The rest of the offer to another buyer closes it and takes it off the open list; its cost is
    # rounded up on its own (10.8 → 11 cents).
    receipt = transact(w3, other, offers.functions.allocateEnergy(offer_id, 400))
    assert events(offers, "EnergyAllocated", receipt)[0][3:] == (400, 11)
    assert offers.functions.offer(offer_id).call()[2] == 0
    assert offers.functions.offer(offer_id).call()[5] is False
    assert offer_id not in offers.functions.openOffers().call()
    assert_reverts(other, offers.functions.allocateEnergy(offer_id, 1), "offers: offer is closed")


def test_metered_consumption_pays_for_one_allocation_only(w3, market, offers):
    buyer = ACCOUNTS[8]
    give_energy(w3, market, 7, 400)
    offer_id = make_offer(w3, market, 7, 400, 30, now(w3) + 3_600)
    first = allocate_and_escrow(w3, market, 8, offer_id, 200)
    second = allocate_and_escrow(w3, market, 8, offer_id, 200)
    post_reading(w3, market, 8, 0, 300)
    assert offers.functions.deliveryOf(first).call() == [300, True]
    assert offers.functions.deliveryOf(second).call() == [300, True]
    transact(w3, buyer, offers.functions.makeTransaction(first))
    assert offers.functions.deliveryOf(second).call() == [100, False]  # 200 of the 300 Wh already paid for
    assert_reverts(buyer, offers.functions.makeTransaction(second), NOT_DELIVERED)
    post_reading(w3, market, 8, 0, 100)
    transact(w3, buyer, offers.functions.makeTransaction(second))
    assert offers.functions.allocation(second).call()[5] == COMPLETED


def test_refund_only_after_expiry(w3, market, offers):
    seller, buyer = ACCOUNTS[9], ACCOUNTS[10]
    give_energy(w3, market, 9, 500)
    expiry = now(w3) + 15  # time for the five transactions below, then it expires
    offer_id = make_offer(w3, market, 9, 500, 40, expiry)
    start = balances(market, seller.address, buyer.address)
    escrowed = allocate_and_escrow(w3, market, 10, offer_id, 300)
    receipt = transact(w3, buyer, offers.functions.allocateEnergy(offer_id, 100))  # allocated, never escrowed
    unpaid = events(offers, "EnergyAllocated", receipt)[0][0]
    assert_reverts(buyer, offers.functions.refund(escrowed), "offers: not expired")

    while now(w3) <= expiry:
        time.sleep(0.3)
    assert offers.functions.openOffers().call().count(offer_id) == 0  # expired offers are not offered
    assert_reverts(buyer, offers.functions.allocateEnergy(offer_id, 10), "offers: offer expired")
    assert_reverts(buyer, offers.functions.allowTransaction(unpaid), "offers: offer expired")
    post_reading(w3, market, 10, 0, 1_000)
    assert_reverts(buyer, offers.functions.makeTransaction(escrowed), "offers: offer expired")

    receipt = transact(w3, ACCOUNTS[11], offers.functions.refund(escrowed))  # anyone may wind it up
    assert events(offers, "Refunded", receipt) == [(escrowed, buyer.address, seller.address, 12, 300)]
    receipt = transact(w3, buyer, offers.functions.refund(unpaid))
    assert events(offers, "Refunded", receipt) == [(unpaid, buyer.address, seller.address, 0, 100)]
    assert offers.functions.allocation(escrowed).call()[5] == REFUNDED
    assert_reverts(buyer, offers.functions.refund(escrowed), "offers: allocation already settled")
    assert_reverts(buyer, offers.functions.refund(10**6), "offers: no such allocation")

    # The unallocated 100 Wh come back by cancelling; then seller and buyer are where they started.
    transact(w3, seller, offers.functions.cancelOffer(offer_id))
    assert balances(market, seller.address, buyer.address) == [(start[0][0], start[0][1] + 500), start[1]]


def test_cancel_offer_returns_the_unallocated_rest(w3, market, offers):
    seller, buyer = ACCOUNTS[12], ACCOUNTS[13]
    give_energy(w3, market, 12, 900)
    offer_id = make_offer(w3, market, 12, 900, 35, now(w3) + 3_600)
    (fiat_before, _), = balances(market, seller.address)
    allocation_id = allocate_and_escrow(w3, market, 13, offer_id, 400)

    assert_reverts(buyer, offers.functions.cancelOffer(offer_id), "offers: caller is not the seller")
    receipt = transact(w3, seller, offers.functions.cancelOffer(offer_id))
    assert events(offers, "OfferCancelled", receipt) == [(offer_id, seller.address, 500)]
    assert events(market["EnergyToken"], "Transfer", receipt) == [(offers.address, seller.address, 500)]
    assert offers.functions.offer(offer_id).call()[2] == 0 and offers.functions.offer(offer_id).call()[5] is False
    assert offer_id not in offers.functions.openOffers().call()
    assert_reverts(seller, offers.functions.cancelOffer(offer_id), "offers: offer is closed")
    assert_reverts(buyer, offers.functions.allocateEnergy(offer_id, 1), "offers: offer is closed")

    # What was allocated before the cancellation still settles on delivery.
    post_reading(w3, market, 13, 0, 400)
    transact(w3, buyer, offers.functions.makeTransaction(allocation_id))
    assert balances(market, seller.address) == [(fiat_before + 14, 500)]  # 0.4 kWh at 35 cents


def test_genesis_params():
    contract = Offers(params={"fiatToken": "0x" + "11" * 20})
    assert contract.params["fiatToken"].hex() == "11" * 20
    assert contract.params["meters"].hex() == "6772696400000000000000000000000000000012"
    from market_sandbox import Sandbox

    state = Sandbox().state
    contract.write_genesis(state)  # the addresses go into the contract's own storage
    assert [as_address(slot.read(state, contract.address)).hex() for slot in TOKEN_ADDRESSES.values()] == [
        "11" * 20, "6772696400000000000000000000000000000011", "6772696400000000000000000000000000000012"]
    with pytest.raises(ValueError, match="unknown parameters"):
        Offers(params={"fiat": "0x" + "11" * 20})
    with pytest.raises(ValueError, match="Offers.energyToken: not an address"):
        Offers(params={"energyToken": "0x1234"})
    with pytest.raises(ValueError, match="meters must not be the zero address"):
        Offers(params={"meters": "0x" + "00" * 20})


def test_open_offers_list_and_escrow_in_process():
    """The open list over many offers (closing one in the middle keeps the rest listed), and the
    contract's token balances equal exactly what it holds in escrow, over the in-process Sandbox."""
    from market_sandbox import ACCOUNTS as SANDBOX_ACCOUNTS
    from market_sandbox import Sandbox

    box = Sandbox()
    offers_address = box.address("Offers")
    seller, buyer = 14, 15

    def ok(sender, to, signature, args=()):
        result = box.transact(sender, to, signature, args)
        assert result.ok, result.reason
        return result

    def view(to, signature, args, returns):
        return box.call(0, to, signature, args, returns)

    slot = view("Meters", "currentSlot()", (), ("uint64",))[0]
    seller_address = SANDBOX_ACCOUNTS[seller].address.to_checksum()
    buyer_address = SANDBOX_ACCOUNTS[buyer].address.to_checksum()
    ok(19 + seller, "Meters", "postReading(address,uint64,uint256,uint256,uint256)",
       (seller_address, slot, 1_000, 0, 0))
    ok(19 + seller, "EnergyToken", "mintWatts(address,uint256)", (seller_address, 1_000))
    ok(seller, "EnergyToken", "approve(address,uint256)", (offers_address.to_checksum(), 1_000))
    expiry = box.timestamp + 3_600
    ids = [ok(seller, "Offers", "makeOffer(uint256,uint256,uint64)", (100, price, expiry)).decode("uint256")[0]
           for price in (50, 40, 30, 20, 10)]
    assert view("Offers", "openOffers()", (), ("uint256[]",))[0] == tuple(ids)

    ok(buyer, "Offers", "allocateEnergy(uint256,uint256)", (ids[1], 100))  # closes the second offer
    ok(seller, "Offers", "cancelOffer(uint256)", (ids[0],))                 # and the first
    assert sorted(view("Offers", "openOffers()", (), ("uint256[]",))[0]) == ids[2:]
    allocation = ok(buyer, "Offers", "allocateEnergy(uint256,uint256)", (ids[4], 40)).decode("uint256")[0]
    ok(buyer, "FiatToken", "approve(address,uint256)", (offers_address.to_checksum(), 1))  # 0.4 cents → 1
    ok(buyer, "Offers", "allowTransaction(uint256)", (allocation,))

    held_energy = view("EnergyToken", "balanceOf(address)", (offers_address.to_checksum(),), ("uint256",))[0]
    held_fiat = view("FiatToken", "balanceOf(address)", (offers_address.to_checksum(),), ("uint256",))[0]
    assert held_energy == 100 + 100 + 100 + 100  # offers 2, 3, 4 (60 left + 40 allocated) and 1's allocation
    assert held_fiat == 1
    assert view("EnergyToken", "balanceOf(address)", (seller_address,), ("uint256",))[0] == 1_000 - 500 + 100
    assert Offers.offer_at(box.state, offers_address, ids[0])["open"] is False
    assert Offers.offer_at(box.state, offers_address, ids[4])["remainingWh"] == 60
    assert Offers.offer_at(box.state, offers_address, 99) is None
    assert Offers.allocation_at(box.state, offers_address, allocation)["status"] == ESCROWED
    assert Offers.allocation_at(box.state, offers_address, allocation + 1) is None
    offer_id, who, wh, fiat, baseline, status = view("Offers", "allocation(uint256)", (allocation,), (
        "uint256", "address", "uint256", "uint256", "uint256", "uint8"))
    assert (offer_id, who.lower(), wh, fiat, baseline, status) == (ids[4], buyer_address.lower(), 40, 1, 0, ESCROWED)


def test_the_cost_is_rounded_up_to_the_base_unit():
    """Wh × (base units per kWh) / 1000, rounded up: the seller is never short a fraction of a cent."""
    assert [cost_of(wh, 25) for wh in (0, 1, 39, 40, 41, 1_000, 1_001, 4_000)] == [0, 1, 1, 1, 2, 25, 26, 100]
    assert cost_of(600, 27) == 17 and cost_of(400, 27) == 11  # 16.2 and 10.8 cents
    assert cost_of(1, 1) == 1 and cost_of(2**200, 1_000) == 2**200
    for wh in range(1, 2_001, 7):
        for price in (1, 13, 25, 30, 40, 999, 1_000, 1_001):
            cost = cost_of(wh, price)
            assert (cost - 1) * 1_000 < wh * price <= cost * 1_000


def test_an_instance_calls_the_tokens_in_its_own_storage():
    """A second Offers sharing the devnet Offers' code (as a factory-made instance does: its kind's
    code, not that object's params) escrows the tokens its own storage names: here a second fiat
    token. An instance whose addresses were never written refuses to trade."""
    from market.contracts.fiat_token import FiatToken
    from market_sandbox import ACCOUNTS as SANDBOX_ACCOUNTS
    from market_sandbox import Sandbox

    seller, buyer = 16, 17
    buyer_address = SANDBOX_ACCOUNTS[buyer].address.to_checksum()
    euro = FiatToken(Address(b"\xe0" * 20), {"name": "Grid Euro", "symbol": "GEUR", "decimals": 2,
                                              "balances": {buyer_address: 500}})
    box = Sandbox(extra=(euro,))
    twin, bare = Address(b"\x0f" * 20), Address(b"\x0e" * 20)
    state = box.state
    Offers(twin, {"fiatToken": euro.address.to_checksum()}).write_genesis(state)  # code marker and storage
    state.set_code(bare, Offers().code)                                         # code marker only
    box._commit(state)
    shared = box.contracts.code_at(box.state, twin)
    assert shared is box.contracts.by_name("Offers") and shared.params["fiatToken"] != euro.address

    def ok(sender, to, signature, args=()):
        result = box.transact(sender, to, signature, args)
        assert result.ok, result.reason
        return result

    def balance(token, who) -> int:
        return box.call(0, token, "balanceOf(address)", (who.to_checksum(),), ("uint256",))[0]

    seller_address = SANDBOX_ACCOUNTS[seller].address.to_checksum()
    slot = box.call(0, "Meters", "currentSlot()", (), ("uint64",))[0]
    ok(19 + seller, "Meters", "postReading(address,uint64,uint256,uint256,uint256)", (seller_address, slot, 800, 0, 0))
    ok(19 + seller, "EnergyToken", "mintWatts(address,uint256)", (seller_address, 800))
    ok(seller, "EnergyToken", "approve(address,uint256)", (twin.to_checksum(), 800))
    offer = ok(seller, twin, "makeOffer(uint256,uint256,uint64)", (800, 22, box.timestamp + 3_600)).decode("uint256")[0]
    allocation = ok(buyer, twin, "allocateEnergy(uint256,uint256)", (offer, 500)).decode("uint256")[0]
    devnet_fiat = balance("FiatToken", Address.from_hex(buyer_address))
    ok(buyer, euro.address, "approve(address,uint256)", (twin.to_checksum(), 11))  # 0.5 kWh at 22 cents
    ok(buyer, twin, "allowTransaction(uint256)", (allocation,))
    assert (balance(euro.address, twin), balance(euro.address, Address.from_hex(buyer_address))) == (11, 489)
    assert balance("FiatToken", Address.from_hex(buyer_address)) == devnet_fiat
    assert balance("EnergyToken", twin) == 800 and balance("FiatToken", twin) == 0
    assert Offers.offer_at(box.state, twin, offer)["pricePerKWh"] == 22
    assert box.call(0, "Offers", "offerCount()", (), ("uint256",)) == (0,)  # the devnet Offers: untouched

    ok(seller, "EnergyToken", "approve(address,uint256)", (bare.to_checksum(), 100))
    refused = box.transact(seller, bare, "makeOffer(uint256,uint256,uint64)", (100, 22, box.timestamp + 3_600))
    assert not refused.ok and refused.reason == "offers: energyToken address not set"
