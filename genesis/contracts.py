"""The one factory of contract tables: the system contracts, plus the market contracts
a genesis places under "contracts" (which kind, at which address, with which params).

    "contracts": {"FiatToken": {"address": "0x…10", "params": {"symbol": "GUSD", …}}, …}

A kind is looked up in `market.contracts.CATALOG` and imported only when a genesis
asks for it; its `parse_params` checks the params, so a bad genesis fails at load
with the field named."""
from __future__ import annotations

import importlib

from market.contracts import CATALOG
from vm.native import SYSTEM_CONTRACTS
from vm.native.contract import NativeContract
from vm.native.table import ContractTable
from vm.types import Address


class ContractSpecError(ValueError):
    """A "contracts" entry that cannot be placed; the message names the field."""


def contract_class(kind: str) -> type[NativeContract]:
    target = CATALOG.get(kind)
    if target is None:
        raise ContractSpecError(f"contracts.{kind}: unknown contract; one of {', '.join(sorted(CATALOG))}")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def build_contract_table(spec: dict) -> ContractTable:
    """The table for a genesis' "contracts" object (kind → {address, params})."""
    if not isinstance(spec, dict):
        raise ContractSpecError("contracts must be an object of contract name → {address, params}")
    placed: list[NativeContract] = list(SYSTEM_CONTRACTS)
    for kind, entry in spec.items():
        if not isinstance(entry, dict):
            raise ContractSpecError(f"contracts.{kind} must be an object with address and params")
        cls = contract_class(kind)
        address = entry.get("address")
        try:
            address = Address.from_hex(address) if address is not None else cls.default_address
        except (TypeError, ValueError):
            raise ContractSpecError(f"contracts.{kind}.address: {address!r} is not an address") from None
        if address is None:
            raise ContractSpecError(f"contracts.{kind}.address is required")
        params = entry.get("params", {})
        if not isinstance(params, dict):
            raise ContractSpecError(f"contracts.{kind}.params must be an object")
        try:
            placed.append(cls(address, params))
        except (ValueError, TypeError) as exc:
            raise ContractSpecError(f"contracts.{kind}.params: {exc}") from None
    kinds = sorted({kind for contract in placed for kind in contract.instance_kinds})
    try:
        return ContractTable(placed, [contract_class(kind)() for kind in kinds])
    except ValueError as exc:
        raise ContractSpecError(f"contracts: {exc}") from None
