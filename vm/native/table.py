"""The contract table: which native code runs at which address, built once from the genesis
and injected into the block pipeline (the vm never imports the market).

Contracts placed by the genesis sit at fixed addresses. A factory contract creates
instances of a kind at deterministic addresses (keccak of the factory and its counter,
as CREATE derives them from sender and nonce); an instance is marked in state by its
code (`code_marker(kind)`), so `eth_getCode` shows it and dispatch finds its class."""
from __future__ import annotations

from typing import Iterable

from vm.crypto import keccak256
from vm.native.contract import CallContext, NativeContract, Revert, code_marker, kind_from_code
from vm.native.storage import Value
from vm.state import State
from vm.types import Address

_CREATED = Value(b"instancesCreated", "uint256")


class ContractTable:
    def __init__(self, placed: Iterable[NativeContract], instance_kinds: Iterable[NativeContract] = ()) -> None:
        """`placed`: contracts at their genesis addresses. `instance_kinds`: code that only runs in
        instances a factory creates (an auction), one object per kind, without an address."""
        self._placed: dict[Address, NativeContract] = {}
        self._kinds: dict[str, NativeContract] = {kind.name: kind for kind in instance_kinds}
        for contract in placed:
            if contract.address in self._placed:
                raise ValueError(f"two contracts at 0x{contract.address.hex()}: "
                                 f"{self._placed[contract.address].name} and {contract.name}")
            self._placed[contract.address] = contract
            self._kinds.setdefault(contract.name, contract)
        self.hooked: tuple[NativeContract, ...] = tuple(
            self._placed[address] for address in sorted(self._placed) if self._placed[address].has_end_of_block)
        """Contracts with end-of-block work, in address order (the order it runs in)."""

    def extended(self, more: Iterable[NativeContract]) -> "ContractTable":
        """This table with more placed contracts (tests place their own beside the genesis')."""
        return ContractTable([*self._placed.values(), *more], self.instance_kinds())

    def placed(self) -> list[NativeContract]:
        """The genesis placements, in address order."""
        return [self._placed[address] for address in sorted(self._placed)]

    def instance_kinds(self) -> list[NativeContract]:
        """Code that runs only in created instances, by name."""
        return sorted((kind for kind in self._kinds.values() if kind.address is None), key=lambda k: k.name)

    def by_name(self, name: str) -> NativeContract | None:
        return self._kinds.get(name)

    def code_at(self, state: State, address: Address) -> NativeContract | None:
        """The code that runs at `address`: a placed contract, or an instance marked in state."""
        contract = self._placed.get(address)
        if contract is not None:
            return contract
        code = state.get_code(address)
        return self._kinds.get(kind_from_code(code)) if code else None

    def write_genesis(self, state: State) -> None:
        for contract in self.placed():
            contract.write_genesis(state)

    def create(self, ctx: CallContext, kind: str) -> Address:
        """Create an instance of `kind` for the factory `ctx.address`: the address is the last
        20 bytes of keccak(factory ‖ n) for the factory's n-th instance; its storage starts
        empty and the caller initialises it by calling it."""
        if kind not in self._kinds:
            raise Revert(f"no contract kind {kind!r} on this chain")
        number = _CREATED.get(ctx)
        address = Address(keccak256(ctx.address + number.to_bytes(32, "big"))[12:])
        if ctx.state.get_code(address) or address in self._placed:
            raise Revert(f"instance address 0x{address.hex()} is taken")
        _CREATED.set(ctx, number + 1)
        ctx.state.set_code(address, code_marker(kind))
        return address
