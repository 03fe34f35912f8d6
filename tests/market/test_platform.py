"""The contract platform as a market contract uses it: payable calls, calls between
contracts with Solidity's revert rules, a depth limit, instances at deterministic
addresses, typed storage charged per word, the block environment, end-of-block work
in the one block pipeline, and a fault barrier that turns a contract's bug into a revert."""
from __future__ import annotations

import logging

import eth_abi
import pytest
from consensus.engine import Signer
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from market_sandbox import ACCOUNTS, Sandbox
from node.chain import Chain
from node.intake import TransactionIntake
from node.mempool import Mempool
from node.producer import produce_block
from node.rpc.eth import EthApi
from node.store import Store
from platform_contracts import Clock, Probe
from vm import gas
from vm.constants import ELECOIN
from vm.crypto import keccak256
from vm.native.contract import MAX_CALL_DEPTH, encode_call
from vm.native.registry import REGISTRY
from vm.pipeline import SYSTEM_RECEIPT_TYPE, system_transaction_hash
from vm.types import Address

PROBE = Probe.default_address
SECOND = Address(b"\x0d" * 20)


@pytest.fixture
def box() -> Sandbox:
    return Sandbox(extra=(Probe(), Probe(SECOND), Clock()))


def test_a_payable_function_takes_elecoins_and_a_plain_one_refuses_them(box):
    assert box.transact(1, PROBE, "deposit()", value=3 * ELECOIN).ok
    assert box.balance(PROBE) == 3 * ELECOIN
    refused = box.transact(1, PROBE, "notes()", value=1)
    assert not refused.ok and refused.reason == "Probe: notes is not payable"
    assert box.transact(1, PROBE, "deposit()").reason == "probe: nothing deposited"


def test_a_contract_pays_from_its_own_balance_and_cannot_overspend(box):
    box.transact(1, PROBE, "deposit()", value=2 * ELECOIN)
    before = box.balance(5)
    assert box.transact(1, PROBE, "pay(address,uint256)", (ACCOUNTS[5].address.to_checksum(), ELECOIN)).ok
    assert box.balance(5) == before + ELECOIN and box.balance(PROBE) == ELECOIN
    short = box.transact(1, PROBE, "pay(address,uint256)", (ACCOUNTS[5].address.to_checksum(), 2 * ELECOIN))
    assert not short.ok and short.reason == "insufficient balance for the call's value"
    assert box.balance(PROBE) == ELECOIN


def test_the_callee_sees_the_calling_contract_as_caller_and_the_sender_as_origin(box):
    result = box.transact(3, PROBE, "forward(address,bytes)", (SECOND.to_checksum(), encode_call("whoCalls()")))
    assert result.ok
    (inner,) = result.decode("bytes")
    caller, origin = eth_abi.decode(["address", "address"], inner)
    assert Address.from_hex(caller) == PROBE and Address.from_hex(origin) == ACCOUNTS[3].address


def test_a_callee_revert_propagates_with_its_reason_and_undoes_everything(box):
    # The Registry sees the Probe as its caller, which is no admin, even though account #0 is.
    register = encode_call("register(address,uint8,string)", ("0x" + "11" * 20, 1, "x"))
    result = box.transact(0, PROBE, "forward(address,bytes)", (REGISTRY.address.to_checksum(), register))
    assert not result.ok and result.reason == "registry: caller is not an admin"
    note = encode_call("note(uint256,string)", (5, "kept?"))
    failed = box.transact(1, PROBE, "forwardAndFail(address,bytes)", (SECOND.to_checksum(), note))
    assert not failed.ok and failed.reason == "probe: failing after the call" and failed.logs == ()
    assert box.call(1, SECOND, "notes()", returns=("uint256",)) == (0,)


def test_a_successful_callee_keeps_its_logs_under_its_own_address(box):
    note = encode_call("note(uint256,string)", (5, "kept"))
    result = box.transact(1, PROBE, "forward(address,bytes)", (SECOND.to_checksum(), note))
    assert result.ok and [log.address for log in result.logs] == [SECOND]
    assert box.call(1, SECOND, "noteAt(uint256)", (0,), ("bool", "uint256", "string")) == (True, 5, "kept")
    assert box.call(1, PROBE, "notes()", returns=("uint256",)) == (0,)


def test_calls_nest_up_to_the_depth_limit(box):
    assert box.call(1, PROBE, "recurse(uint256)", (10,), ("uint256",)) == (10,)
    too_deep = box.transact(1, PROBE, "recurse(uint256)", (MAX_CALL_DEPTH + 1,))
    assert not too_deep.ok and too_deep.reason == f"call depth limit {MAX_CALL_DEPTH} reached"


def test_instances_live_at_deterministic_addresses_with_their_own_storage(box):
    first = box.transact(1, PROBE, "spawn()")
    second = box.transact(1, PROBE, "spawn()")
    (a,), (b,) = first.decode("address"), second.decode("address")
    assert Address.from_hex(a) == Address(keccak256(PROBE + (0).to_bytes(32, "big"))[12:])
    assert Address.from_hex(b) == Address(keccak256(PROBE + (1).to_bytes(32, "big"))[12:])
    assert box.state.get_code(Address.from_hex(a)).startswith(b"\xfegridnode native contract: Probe")
    assert box.call(1, a, "noteAt(uint256)", (0,), ("bool", "uint256", "string")) == (True, 7, "instance")
    assert box.call(1, PROBE, "notes()", returns=("uint256",)) == (0,)


def test_storage_gas_is_charged_per_32_byte_word(box):
    small = box.transact(1, PROBE, "putWord(bytes32,bytes)", (b"\x01" * 32, b"\x05" * 10))
    large = box.transact(1, PROBE, "putWord(bytes32,bytes)", (b"\x02" * 32, b"\x05" * 330))
    # ABI-encoded `bytes`: an offset word, a length word and the padded data: 3 words vs 13, all new.
    assert large.gas_used - small.gas_used == 10 * gas.STORAGE_SET
    rewrite = box.transact(1, PROBE, "putWord(bytes32,bytes)", (b"\x02" * 32, b"\x06" * 330))
    assert large.gas_used - rewrite.gas_used == 13 * (gas.STORAGE_SET - gas.STORAGE_UPDATE)


def test_a_call_sees_the_whole_block_environment(box):
    number, timestamp, producer, chain_id, base_fee = box.call(
        1, PROBE, "environment()", returns=("uint256", "uint256", "address", "uint256", "uint256"))
    assert (number, chain_id, base_fee) == (box.number + 1, 1337, box.genesis.base_fee)
    assert timestamp == box.timestamp + box.genesis.block_time and Address.from_hex(producer) == Address(b"\x99" * 20)


def test_a_contract_bug_is_a_deterministic_revert_logged_once(box, caplog):
    with caplog.at_level(logging.ERROR, logger="gridnode.vm"):
        first = box.transact(1, PROBE, "boom()")
        again = box.transact(2, PROBE, "boom()")
    assert (first.ok, first.reason) == (again.ok, again.reason) == (False, "internal error")
    assert box.call(1, PROBE, "notes()", returns=("uint256",)) == (0,)  # the push before the bug is undone
    reports = [r for r in caplog.records if "Probe raised" in r.getMessage()]
    assert len(reports) <= 1 and all(r.exc_info for r in reports)


def test_running_out_of_gas_uses_all_of_it(box):
    result = box.transact(1, PROBE, "burnGas()", gas=200_000)
    assert not result.ok and result.reason == "out of gas" and result.gas_used == 200_000


def test_end_of_block_work_runs_after_every_block_and_a_failing_one_is_undone(box):
    logs = box.mine()
    assert [log.address for log in logs] == [Clock.default_address]
    assert box.call(1, Clock.default_address, "ticks()", returns=("uint256",)) == (1,)
    box.transact(1, Clock.default_address, "setFailing(bool)", (True,))  # its own block: the hook failed
    assert box.mine() == ()
    assert box.call(1, Clock.default_address, "ticks()", returns=("uint256",)) == (1,)


def _chain_with_clock(path, signer: Signer) -> Chain:
    genesis = Genesis.from_json(devnet_genesis_document(signer.address))
    genesis.__dict__["contracts"] = genesis.contracts.extended([Clock()])  # a test contract
    return Chain(Store(str(path)), genesis, genesis.create_engine())


def test_end_of_block_logs_ride_in_a_system_receipt_that_importers_reproduce(tmp_path):
    signer = Signer(b"\x07" * 32)
    producer, follower = _chain_with_clock(tmp_path / "p", signer), _chain_with_clock(tmp_path / "f", signer)
    try:
        built = produce_block(producer, Mempool(producer.chain_id, producer.genesis.gas_limit), signer,
                              producer.head.timestamp + 1)
        receipts = producer.receipts(built.block.hash)
        assert len(built.block.transactions) == 0 and len(receipts) == 1
        assert receipts[0].tx_type == SYSTEM_RECEIPT_TYPE and receipts[0].gas_used == 0
        assert [log.address for log in receipts[0].logs] == [Clock.default_address]
        follower.import_block(built.block)
        assert follower.head.hash == built.block.hash
        assert follower.receipts(built.block.hash) == receipts
        eth = EthApi(follower, TransactionIntake(follower, Mempool(follower.chain_id, follower.genesis.gas_limit)), [])
        (tick,) = eth.eth_getLogs({"fromBlock": "0x1", "toBlock": "0x1"})
        assert tick["address"] == Clock.default_address.to_checksum()
        assert tick["transactionIndex"] == "0x0" and tick["logIndex"] == "0x0"
        assert tick["transactionHash"] == "0x" + system_transaction_hash(built.block.hash).hex()
    finally:
        producer.store.close()
        follower.store.close()
