"""Meters (paper 002's SMA/PVA/BSA oracles) as wallets and oracles use them over JSON-RPC:
registering a meter, posting one reading per slot, querying readings and totals; then the
genesis params and the gas-free reader checked in process."""
from __future__ import annotations

import re

import pytest
from eth_account import Account
from helpers import send
from market.contracts.meters import Meters, Reading
from market_sandbox import Sandbox
from vm.state import State
from vm.types import Address
from wallet import ACCOUNTS, assert_reverts, events, transact

METER_ORACLE = 5


def test_slots_follow_block_time(w3, meters):
    assert meters.functions.slotSeconds().call() == 900
    block = w3.eth.get_block("latest")
    assert meters.functions.currentSlot().call(block_identifier=block.number) == block.timestamp // 900


def test_devnet_registers_an_oracle_per_prosumer(meters):
    for index in range(1, 20):
        assert meters.functions.oracleOf(ACCOUNTS[index].address).call() == ACCOUNTS[19 + index].address
    assert meters.functions.oracleOf(ACCOUNTS[0].address).call() == "0x" + "00" * 20


def test_one_reading_per_meter_per_slot(w3, meters):
    prosumer, oracle, stranger = ACCOUNTS[13], ACCOUNTS[32], ACCOUNTS[33]
    slot = meters.functions.currentSlot().call()
    assert meters.functions.reading(prosumer.address, slot).call() == [False, 0, 0, 0]

    receipt = transact(w3, oracle, meters.functions.postReading(prosumer.address, slot, 1_500, 400, 7_200))
    assert receipt.status == 1
    assert events(meters, "ReadingPosted", receipt) == [(prosumer.address, slot, 1_500, 400, 7_200)]
    assert meters.functions.reading(prosumer.address, slot).call() == [True, 1_500, 400, 7_200]
    assert meters.functions.totalGeneration(prosumer.address).call() == 1_500
    assert meters.functions.totalConsumption(prosumer.address).call() == 400
    assert meters.functions.lastSlot(prosumer.address).call() == slot
    assert meters.functions.readingCount(prosumer.address).call() == 1
    # readings are found by prosumer and slot, both indexed
    logs = meters.events.ReadingPosted().get_logs(from_block=receipt.blockNumber, to_block=receipt.blockNumber,
                                                  argument_filters={"prosumer": prosumer.address, "slot": slot})
    assert [log.transactionHash for log in logs] == [receipt.transactionHash]

    again = meters.functions.postReading(prosumer.address, slot, 1, 1, 1)
    assert_reverts(oracle, again, "meters: reading already posted for this slot")
    failed = transact(w3, oracle, again, gas=300_000)
    assert failed.status == 0 and failed.logs == []
    assert meters.functions.reading(prosumer.address, slot).call() == [True, 1_500, 400, 7_200]

    ahead = meters.functions.currentSlot().call() + 2  # + 2: the next block may already be in the next slot
    assert_reverts(oracle, meters.functions.postReading(prosumer.address, ahead, 1, 1, 1),
                   "meters: slot is in the future")
    assert_reverts(stranger, meters.functions.postReading(prosumer.address, slot, 1, 1, 1),
                   "meters: caller is not the prosumer's meter oracle")
    assert_reverts(prosumer, meters.functions.postReading(prosumer.address, slot - 1, 1, 1, 1),
                   "meters: caller is not the prosumer's meter oracle")
    nobody = Account.create().address
    assert_reverts(oracle, meters.functions.postReading(nobody, slot, 1, 1, 1),
                   "meters: no meter registered for the prosumer")

    # a meter that was offline catches up on a past slot; totals add up, lastSlot stays the highest
    transact(w3, oracle, meters.functions.postReading(prosumer.address, slot - 3, 250, 100, 6_000))
    assert meters.functions.reading(prosumer.address, slot - 3).call() == [True, 250, 100, 6_000]
    assert meters.functions.totalGeneration(prosumer.address).call() == 1_750
    assert meters.functions.totalConsumption(prosumer.address).call() == 500
    assert meters.functions.lastSlot(prosumer.address).call() == slot
    assert meters.functions.readingCount(prosumer.address).call() == 2


def test_admin_registers_and_replaces_a_meter(w3, meters, registry):
    admin, prosumer, old_oracle, outsider = ACCOUNTS[0], ACCOUNTS[14], ACCOUNTS[33], ACCOUNTS[15]
    new_oracle, unregistered = Account.create(), Account.create()
    transact(w3, admin, registry.functions.register(new_oracle.address, METER_ORACLE, "meter-14b"))
    send(w3, admin, {"to": new_oracle.address, "value": 10**18, "gas": 21_000,
                     "maxFeePerGas": 10 * 10**9, "maxPriorityFeePerGas": 10**9})

    assert_reverts(outsider, meters.functions.registerMeter(prosumer.address, new_oracle.address),
                   "meters: caller is not an admin")
    assert_reverts(admin, meters.functions.registerMeter(unregistered.address, new_oracle.address),
                   "meters: prosumer is not registered")
    assert_reverts(admin, meters.functions.registerMeter(prosumer.address, outsider.address),
                   "meters: oracle does not have the meter oracle role")
    assert_reverts(admin, meters.functions.registerMeter(prosumer.address, old_oracle.address),
                   "meters: oracle already registered for the prosumer")

    receipt = transact(w3, admin, meters.functions.registerMeter(prosumer.address, new_oracle.address))
    assert events(meters, "MeterRegistered", receipt) == [(prosumer.address, new_oracle.address)]
    assert meters.functions.oracleOf(prosumer.address).call() == new_oracle.address

    slot = meters.functions.currentSlot().call()
    assert_reverts(old_oracle, meters.functions.postReading(prosumer.address, slot, 1, 1, 1),
                   "meters: caller is not the prosumer's meter oracle")
    receipt = transact(w3, new_oracle, meters.functions.postReading(prosumer.address, slot, 800, 0, 0))
    assert events(meters, "ReadingPosted", receipt) == [(prosumer.address, slot, 800, 0, 0)]


# -- in process ------------------------------------------------------------------------
class _Empty:
    def get(self, key: bytes):
        return None


def test_genesis_oracles_and_the_gas_free_reader():
    prosumer, oracle = Address.from_hex(ACCOUNTS[1].address), Address.from_hex(ACCOUNTS[20].address)
    contract = Meters(None, {"slotSeconds": 60, "oracles": {ACCOUNTS[1].address: ACCOUNTS[20].address.lower()}})
    state = State(_Empty())
    contract.write_genesis(state)
    assert Meters.slot_seconds_at(state, contract.address) == 60
    assert Meters.oracle_at(state, contract.address, prosumer) == oracle
    assert Meters.oracle_at(state, contract.address, oracle) is None
    assert Meters.reading_at(state, contract.address, prosumer, 7) is None
    assert Meters().params == {"slotSeconds": 900, "oracles": {}}
    assert Reading(1, 2, 3).battery_wh == 3


def test_gas_free_reader_sees_what_postreading_wrote():
    box = Sandbox()
    prosumer, oracle = Address.from_hex(ACCOUNTS[2].address), Address.from_hex(ACCOUNTS[21].address)
    box.mine(5 * 900)
    (slot,) = box.call(0, "Meters", "currentSlot()", returns=("uint64",))
    assert slot == 5
    posted = box.transact(oracle, "Meters", "postReading(address,uint64,uint256,uint256,uint256)",
                          (prosumer.to_checksum(), 4, 640, 210, 3_300))
    assert posted.ok and posted.gas_used < 200_000
    meters = box.address("Meters")
    assert Meters.reading_at(box.state, meters, prosumer, 4) == Reading(640, 210, 3_300)
    assert Meters.reading_at(box.state, meters, prosumer, 5) is None
    assert box.call(0, "Meters", "lastSlot(address)", (prosumer.to_checksum(),), returns=("uint64",)) == (4,)


@pytest.mark.parametrize("params, message", [
    ({"slotSeconds": 0}, "Meters.slotSeconds"),
    ({"slotSeconds": "900"}, "Meters.slotSeconds"),
    ({"slotSeconds": 7 * 24 * 3600 + 1}, "Meters.slotSeconds"),
    ({"oracles": []}, "Meters.oracles"),
    ({"oracles": {ACCOUNTS[1].address: ACCOUNTS[1].address}}, "its own meter oracle"),
    ({"oracles": {ACCOUNTS[1].address: "0x" + "00" * 20}}, "zero address"),
    ({"oracles": {ACCOUNTS[1].address: "meter"}}, "not an address"),
    ({"slot": 900}, "unknown params"),
])
def test_bad_genesis_params_name_the_field(params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Meters(None, params)
