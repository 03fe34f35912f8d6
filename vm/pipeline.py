"""The one block pipeline: transactions, then end-of-block work, then the engine's
finalize. Production and import both run it; they differ only in who picks the
transactions (the producer offers candidates and keeps those that fit; an imported
block's every transaction must be valid, or the block is).

End-of-block work (a contract's `end_of_block`, e.g. clearing an auction) runs after
the last transaction, contracts in address order, each with its own gas budget
(`end_of_block_gas`) outside the block's gas limit, as the system (caller = the zero address). Its logs
go into one **system receipt** appended after the transactions' receipts (type
`SYSTEM_RECEIPT_TYPE`, gas 0), only when there are logs: it is in the receipts
root, and the RPC reports its logs with transactionIndex = the number of
transactions and transactionHash = `system_transaction_hash(block hash)`, the way
Polygon's Bor reports its state-sync logs. A hook that reverts or runs out of gas
has its changes undone and the block goes on."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from vm.blocks import Log, Receipt, combine_blooms, logs_bloom
from vm.crypto import keccak256
from vm.environment import BlockEnvironment
from vm.limits import MAX_BLOCK_BYTES, MAX_HEADER_BYTES, encoded_block_size, rlp_string_size
from vm.merkle import list_root
from vm.native.contract import CallContext, OutOfGas, Revert, run_frame
from vm.native.table import ContractTable
from vm.state import State
from vm.transactions import Transaction
from vm.transition import TransactionRejected, apply_transaction, validate_transaction
from vm.types import ZERO_ADDRESS

log = logging.getLogger("gridnode.vm")

SYSTEM_RECEIPT_TYPE = 0x7F
"""Type byte of the receipt that carries end-of-block logs (no transaction has this type)."""

BLOCK_FULL = "block byte limit reached"

Finalize = Callable[[State, tuple[Transaction, ...], tuple[Receipt, ...]], None]
"""The engine's finalize (rewards), bound to the block's header by the caller."""


def system_transaction_hash(block_hash: bytes) -> bytes:
    """The transactionHash the RPC reports for a block's end-of-block logs."""
    return keccak256(b"gridnode end-of-block " + block_hash)


@dataclass(frozen=True)
class BlockOutput:
    transactions: tuple[Transaction, ...]
    receipts: tuple[Receipt, ...]
    """One per transaction, then the system receipt if end-of-block work logged anything."""
    gas_used: int

    @property
    def bloom(self) -> bytes:
        return combine_blooms(r.bloom for r in self.receipts)

    @property
    def receipts_root(self) -> bytes:
        return list_root([r.encode() for r in self.receipts])


class BlockBuilder:
    """Applies transactions to a block's state one at a time, within the gas and byte
    budgets, then finishes the block."""

    def __init__(self, state: State, env: BlockEnvironment, contracts: ContractTable) -> None:
        self.state, self.env, self.contracts = state, env, contracts
        self.transactions: list[Transaction] = []
        self.receipts: list[Receipt] = []
        self.gas_used = 0
        self._payload_bytes = 0

    @property
    def gas_left(self) -> int:
        return self.env.gas_limit - self.gas_used

    def fits(self, tx: Transaction) -> bool:
        """Whether the block stays within MAX_BLOCK_BYTES with `tx` in it, counting the largest
        header and seal, so a sealed block is always one every peer accepts."""
        payload = self._payload_bytes + rlp_string_size(len(tx.raw))
        return encoded_block_size(MAX_HEADER_BYTES, payload) <= MAX_BLOCK_BYTES

    def add(self, tx: Transaction) -> Receipt:
        """Validate and apply `tx`; raises TransactionRejected (state untouched) if it may not
        be in the block at this point."""
        if not self.fits(tx):
            raise TransactionRejected(BLOCK_FULL)
        validate_transaction(self.state, self.env, tx, self.gas_left)
        receipt = apply_transaction(self.state, self.env, self.contracts, tx, self.gas_used)
        self.gas_used = receipt.cumulative_gas_used
        self._payload_bytes += rlp_string_size(len(tx.raw))
        self.transactions.append(tx)
        self.receipts.append(receipt)
        return receipt

    def finish(self, finalize: Finalize) -> BlockOutput:
        """End-of-block work, then the engine's finalize; the state then holds the block's result."""
        transactions, receipts = tuple(self.transactions), list(self.receipts)
        system_logs = run_end_of_block(self.state, self.env, self.contracts)
        if system_logs:
            receipts.append(Receipt(SYSTEM_RECEIPT_TYPE, True, self.gas_used, 0, 0, system_logs,
                                    logs_bloom(system_logs)))
        finalize(self.state, transactions, tuple(self.receipts))
        return BlockOutput(transactions, tuple(receipts), self.gas_used)


def run_end_of_block(state: State, env: BlockEnvironment, contracts: ContractTable) -> tuple[Log, ...]:
    logs: list[Log] = []
    for contract in contracts.hooked:
        ctx = CallContext(state, env, contracts, contract.address, ZERO_ADDRESS, ZERO_ADDRESS, 0,
                          contract.end_of_block_gas)
        snapshot = state.snapshot()
        try:
            run_frame(ctx, b"", entry=contract.end_of_block)
        except (Revert, OutOfGas) as exc:
            state.revert(snapshot)
            log.warning("end-of-block work of %s failed: %s", contract.name,
                        exc.reason if isinstance(exc, Revert) else "out of gas")
            continue
        logs.extend(ctx.logs)
    return tuple(logs)


def apply_block(builder: BlockBuilder, transactions: tuple[Transaction, ...], finalize: Finalize) -> BlockOutput:
    """Apply an imported block's body; any transaction that may not be there invalidates it
    (TransactionRejected, with the index)."""
    for index, tx in enumerate(transactions):
        try:
            builder.add(tx)
        except TransactionRejected as exc:
            raise TransactionRejected(f"{exc} (transaction {index})") from None
    return builder.finish(finalize)
