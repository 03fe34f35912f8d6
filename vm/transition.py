"""The state-transition function, in the manner of ethereum/execution-specs:
validate a transaction, apply it, apply a block body. Plain functions over
explicit types; no clock, no I/O, no floats.

Fees: the whole effective gas price (base fee and tip) goes to the block's
producer. Nothing is burned, so elecoin supply changes only through the
engine's rewards, which keeps supply auditable on a permissioned chain."""
from __future__ import annotations

from dataclasses import dataclass

from vm import gas
from vm.blocks import Log, Receipt, logs_bloom
from vm.environment import BlockEnvironment
from vm.native.contract import CallContext, OutOfGas, Revert, run_frame
from vm.native.registry import REGISTRY
from vm.native.table import ContractTable
from vm.state import State
from vm.transactions import Transaction
from vm.types import Address


GAS_LIMIT_REACHED = "gas limit reached"


class TransactionRejected(Exception):
    """A transaction that may not enter a block; the message is the Ethereum-style reason."""


@dataclass(frozen=True)
class CallResult:
    succeeded: bool
    output: bytes
    """Return data, or the `Error(string)` revert data on failure."""
    gas_used: int
    logs: tuple[Log, ...]
    error: str | None = None


def upfront_cost(tx: Transaction) -> int:
    """What the sender must hold before the transaction runs: gas * fee cap + value."""
    return tx.gas * tx.max_fee_per_gas + tx.value


def check_transaction_static(tx: Transaction, chain_id: int, block_gas_limit: int) -> None:
    """Checks that need no state: chain, fee fields, gas bounds, supported kind."""
    if tx.chain_id != chain_id:
        raise TransactionRejected(f"invalid chain id: have {tx.chain_id}, want {chain_id}")
    if tx.to is None:
        raise TransactionRejected("contract creation is not supported: gridnode runs native contracts only")
    if tx.max_priority_fee_per_gas > tx.max_fee_per_gas:
        raise TransactionRejected("max priority fee per gas higher than max fee per gas")
    if tx.gas > block_gas_limit:
        raise TransactionRejected("exceeds block gas limit")
    floor = gas.intrinsic_gas(tx.data, tx.access_list)
    if tx.gas < floor:
        raise TransactionRejected(f"intrinsic gas too low: have {tx.gas}, want {floor}")


def check_sender(state: State, tx: Transaction) -> None:
    if REGISTRY.role_at(state, tx.sender) == 0:
        raise TransactionRejected(f"sender not registered: {tx.sender.to_checksum()}")


def validate_transaction(state: State, env: BlockEnvironment, tx: Transaction, gas_available: int) -> None:
    """Everything that makes a transaction includable at this point of this block."""
    check_transaction_static(tx, env.chain_id, env.gas_limit)
    check_sender(state, tx)
    account = state.get_account(tx.sender)
    if tx.nonce < account.nonce:
        raise TransactionRejected(f"nonce too low: next nonce {account.nonce}, tx nonce {tx.nonce}")
    if tx.nonce > account.nonce:
        raise TransactionRejected(f"nonce too high: next nonce {account.nonce}, tx nonce {tx.nonce}")
    if tx.max_fee_per_gas < env.base_fee:
        raise TransactionRejected(
            f"max fee per gas less than block base fee: maxFeePerGas {tx.max_fee_per_gas}, baseFee {env.base_fee}")
    if tx.gas > gas_available:
        raise TransactionRejected(GAS_LIMIT_REACHED)
    if account.balance < upfront_cost(tx):
        raise TransactionRejected(
            f"insufficient funds for gas * price + value: balance {account.balance}, cost {upfront_cost(tx)}")


def execute_message(state: State, env: BlockEnvironment, contracts: ContractTable, sender: Address,
                    to: Address, value: int, data: bytes, gas_left: int) -> CallResult:
    """Move value and run the target's code, all or nothing. Used by transactions and eth_call."""
    snapshot = state.snapshot()
    ctx = CallContext(state, env, contracts, to, sender, sender, value, gas_left)
    try:
        output = run_frame(ctx, data)
    except Revert as revert:
        state.revert(snapshot)
        return CallResult(False, revert.data(), gas_left - ctx.gas_left, (), f"execution reverted: {revert.reason}")
    except OutOfGas:
        state.revert(snapshot)
        return CallResult(False, b"", gas_left, (), "out of gas")
    return CallResult(True, output, gas_left - ctx.gas_left, tuple(ctx.logs))


def apply_transaction(state: State, env: BlockEnvironment, contracts: ContractTable, tx: Transaction,
                      cumulative_gas: int) -> Receipt:
    """Charge the sender, run the message, refund unused gas, pay the producer.

    The caller has run `validate_transaction`; a failed message still costs gas
    and bumps the nonce, exactly as on Ethereum."""
    price = tx.effective_gas_price(env.base_fee)
    state.increment_nonce(tx.sender)
    state.sub_balance(tx.sender, tx.gas * price)
    intrinsic = gas.intrinsic_gas(tx.data, tx.access_list)
    result = execute_message(state, env, contracts, tx.sender, tx.to, tx.value, tx.data, tx.gas - intrinsic)
    gas_used = intrinsic + result.gas_used
    state.add_balance(tx.sender, (tx.gas - gas_used) * price)
    state.add_balance(env.producer, gas_used * price)
    return Receipt(tx.tx_type, result.succeeded, cumulative_gas + gas_used, gas_used, price,
                   result.logs, logs_bloom(result.logs))
