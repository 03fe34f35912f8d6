"""An in-process chain for contract tests: the devnet genesis's state and contract table,
calls run through the vm's message execution one block at a time, no node and no disk.
Signatures are skipped (the vm's permission and nonce checks are not what these tests
are about); everything a contract does runs exactly as in a block."""
from __future__ import annotations

from dataclasses import dataclass

import eth_abi
from genesis.config import Genesis
from genesis.devnet import dev_accounts, devnet_genesis_document
from vm.blocks import Log
from vm.environment import BlockEnvironment
from vm.native.contract import NativeContract, encode_call
from vm.pipeline import run_end_of_block
from vm.state import State
from vm.transition import execute_message
from vm.types import Address

PRODUCER = Address(b"\x99" * 20)
ACCOUNTS = dev_accounts(40)
"""The test mnemonic's accounts: #0 admin/operator, #1..#19 prosumers, #20..#38 their meter oracles."""


class _Committed(dict):
    def get(self, key):
        return super().get(key)


@dataclass(frozen=True)
class Result:
    ok: bool
    reason: str | None
    """The revert reason as a wallet shows it (without "execution reverted: ")."""
    output: bytes
    logs: tuple[Log, ...]
    gas_used: int

    def decode(self, *types: str) -> tuple:
        return tuple(eth_abi.decode(list(types), self.output))


def address_of(who) -> Address:
    if isinstance(who, int):
        return ACCOUNTS[who].address
    return Address.from_hex(who) if isinstance(who, str) else Address(who)


def devnet_document(**params: dict) -> dict:
    """The devnet genesis with some contracts' params replaced: devnet_document(DoubleAuction={...})."""
    document = devnet_genesis_document(PRODUCER)
    for name, value in params.items():
        document["contracts"][name]["params"] = value
    return document


class Sandbox:
    def __init__(self, document: dict | None = None, extra: tuple[NativeContract, ...] = ()) -> None:
        """`extra`: more contracts placed beside the genesis' (test contracts)."""
        self.genesis = Genesis.from_json(document or devnet_genesis_document(PRODUCER))
        self.contracts = self.genesis.contracts.extended(extra)
        state = State(_Committed())
        self.genesis.write_state(state)
        for contract in extra:
            contract.write_genesis(state)
        self.committed = _Committed({k: v for k, v in state.changes().items() if v is not None})
        self.number = 0
        self.timestamp = self.genesis.timestamp

    @property
    def state(self) -> State:
        return State(self.committed)

    def address(self, name: str) -> Address:
        return self.contracts.by_name(name).address

    def _env(self) -> BlockEnvironment:
        return BlockEnvironment(self.genesis.chain_id, self.number + 1, self.timestamp + self.genesis.block_time,
                                PRODUCER, self.genesis.base_fee, self.genesis.gas_limit)

    def _commit(self, state: State) -> None:
        for key, value in state.changes().items():
            if value is None:
                self.committed.pop(key, None)
            else:
                self.committed[key] = value

    def transact(self, sender, to, signature: str, args: tuple = (), value: int = 0, gas: int = 10_000_000) -> Result:
        """One call as a whole transaction in its own block (committed if it succeeds)."""
        to = self.address(to) if isinstance(to, str) and not to.startswith("0x") else address_of(to)
        state, env = self.state, self._env()
        result = execute_message(state, env, self.contracts, address_of(sender), to, value,
                                 encode_call(signature, args), gas)
        self._commit(state)
        self.number, self.timestamp = env.number, env.timestamp
        reason = result.error.removeprefix("execution reverted: ") if result.error else None
        return Result(result.succeeded, reason, result.output, result.logs, result.gas_used)

    def call(self, sender, to, signature: str, args: tuple = (), returns: tuple[str, ...] = ()) -> tuple:
        """eth_call: run on a throwaway state and decode the outputs; raises on a revert."""
        to = self.address(to) if isinstance(to, str) and not to.startswith("0x") else address_of(to)
        result = execute_message(self.state, self._env(), self.contracts, address_of(sender), to, 0,
                                 encode_call(signature, args), 10_000_000)
        if not result.succeeded:
            raise AssertionError(f"call reverted: {result.error}")
        return tuple(eth_abi.decode(list(returns), result.output)) if returns else ()

    def mine(self, seconds: int | None = None) -> tuple[Log, ...]:
        """End the current block (end-of-block work runs) and move time on."""
        env = self._env()
        state = self.state
        logs = run_end_of_block(state, env, self.contracts)
        self._commit(state)
        self.number = env.number
        self.timestamp = env.timestamp if seconds is None else self.timestamp + seconds
        return logs

    def balance(self, who) -> int:
        return self.state.get_balance(address_of(who))
