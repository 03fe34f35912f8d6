"""The state-transition function on its own: no node, no disk, just State and transactions."""
from __future__ import annotations

import eth_abi
import pytest
from eth_account import Account
from genesis.config import Genesis
from genesis.devnet import devnet_genesis_document
from vm.crypto import keccak256
from vm.native.registry import REGISTRY, Role
from vm.state import State
from vm.transactions import decode_transaction
from vm.environment import BlockEnvironment
from vm.pipeline import BlockBuilder, apply_block
from vm.transition import TransactionRejected, apply_transaction, validate_transaction
from vm.types import Address

ADMIN = Account.from_key("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
ALICE = Account.from_key("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
PRODUCER = Address(b"\x99" * 20)
CONTRACTS = Genesis.from_json(devnet_genesis_document(PRODUCER)).contracts
ENV = BlockEnvironment(chain_id=1337, number=1, timestamp=1000, producer=PRODUCER, base_fee=10**9,
                       gas_limit=30_000_000)


class DictReader(dict):
    def get(self, key):
        return super().get(key)


@pytest.fixture
def state() -> State:
    genesis = Genesis.from_json(devnet_genesis_document(PRODUCER))
    base = State(DictReader())
    genesis.write_state(base)
    return State(DictReader(base.changes()))


def tx(account, nonce=0, **fields):
    body = {"to": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "value": 10**18, "gas": 21_000, "chainId": 1337,
            "maxFeePerGas": 3 * 10**9, "maxPriorityFeePerGas": 10**9, "nonce": nonce, **fields}
    return decode_transaction(bytes(account.sign_transaction(body).raw_transaction))


def call_data(signature: str, types: list[str], args: list) -> str:
    return "0x" + (keccak256(signature.encode())[:4] + eth_abi.encode(types, args)).hex()


def total(state: State, addresses) -> int:
    return sum(state.get_balance(Address.from_hex(a) if isinstance(a, str) else a) for a in addresses)


def test_transfer_pays_value_and_fees_and_conserves_supply(state):
    holders = [ADMIN.address, ALICE.address, "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", PRODUCER]
    supply = total(state, holders)
    transfer = tx(ALICE)
    validate_transaction(state, ENV, transfer, ENV.gas_limit)
    receipt = apply_transaction(state, ENV, CONTRACTS, transfer, 0)
    price = 2 * 10**9  # base fee + full tip, under the cap
    assert receipt.succeeded and receipt.gas_used == 21_000 and receipt.effective_gas_price == price
    assert state.get_balance(PRODUCER) == 21_000 * price
    assert state.get_account(transfer.sender).nonce == 1
    assert total(state, holders) == supply


def test_reverted_call_undoes_state_but_charges_gas(state):
    data = call_data("register(address,uint8,string)", ["address", "uint8", "string"],
                     ["0x" + "ab" * 20, 1, "x"])
    attempt = tx(ALICE, to=REGISTRY.address.to_checksum(), value=0, gas=200_000, data=data)
    receipt = apply_transaction(state, ENV, CONTRACTS, attempt, 0)
    assert not receipt.succeeded and receipt.logs == ()
    assert 21_000 < receipt.gas_used < 200_000
    assert REGISTRY.role_at(state, Address(b"\xab" * 20)) == Role.NONE
    assert state.get_account(attempt.sender).nonce == 1


def test_out_of_gas_consumes_everything(state):
    data = call_data("register(address,uint8,string)", ["address", "uint8", "string"],
                     ["0x" + "ab" * 20, 1, "x"])
    starved = tx(ADMIN, to=REGISTRY.address.to_checksum(), value=0, gas=30_000, data=data)
    receipt = apply_transaction(state, ENV, CONTRACTS, starved, 0)
    assert not receipt.succeeded and receipt.gas_used == 30_000
    assert REGISTRY.role_at(state, Address(b"\xab" * 20)) == Role.NONE


def test_value_sent_to_a_non_payable_function_reverts(state):
    data = call_data("revoke(address)", ["address"], [ALICE.address])
    paid = tx(ADMIN, to=REGISTRY.address.to_checksum(), value=5, gas=100_000, data=data)
    before = state.get_balance(REGISTRY.address)
    assert not apply_transaction(state, ENV, CONTRACTS, paid, 0).succeeded
    assert state.get_balance(REGISTRY.address) == before


def test_admin_registers_and_revokes(state):
    newcomer = "0x" + "cd" * 20
    register = tx(ADMIN, to=REGISTRY.address.to_checksum(), value=0, gas=200_000,
                  data=call_data("register(address,uint8,string)", ["address", "uint8", "string"],
                                 [newcomer, int(Role.EV), "ev-1"]))
    revoke = tx(ADMIN, nonce=1, to=REGISTRY.address.to_checksum(), value=0, gas=200_000,
                data=call_data("revoke(address)", ["address"], [newcomer]))
    output = apply_block(BlockBuilder(state, ENV, CONTRACTS), (register,), lambda *_: None)
    assert output.receipts[0].succeeded and len(output.receipts[0].logs) == 1
    assert REGISTRY.role_at(state, Address.from_hex(newcomer)) == Role.EV
    assert apply_transaction(state, ENV, CONTRACTS, revoke, output.gas_used).succeeded
    assert REGISTRY.role_at(state, Address.from_hex(newcomer)) == Role.NONE


@pytest.mark.parametrize("make,reason", [
    (lambda: tx(ALICE, nonce=1), "nonce too high"),
    (lambda: tx(ALICE, maxFeePerGas=10**8, maxPriorityFeePerGas=10**8), "less than block base fee"),
    (lambda: tx(ALICE, chainId=1), "invalid chain id"),
    (lambda: tx(ALICE, gas=20_000), "intrinsic gas too low"),
    (lambda: tx(ALICE, value=10**30), "insufficient funds"),
    (lambda: tx(Account.create()), "sender not registered"),
])
def test_invalid_transactions_are_rejected_with_reason(state, make, reason):
    with pytest.raises(TransactionRejected, match=reason):
        validate_transaction(state, ENV, make(), ENV.gas_limit)


def test_snapshot_revert_is_exact(state):
    alice = Address.from_hex(ALICE.address)
    before = state.changes()
    mark = state.snapshot()
    state.add_balance(alice, 5)
    state.set_storage(alice, b"\x01" * 32, b"x")
    state.revert(mark)
    assert state.changes() == before
