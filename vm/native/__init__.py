"""Native contracts: Python modules at fixed addresses that speak the Solidity ABI.

`NATIVE_CONTRACTS` is the dispatch table, by address, in the manner of the
execution specs' precompile table."""
from __future__ import annotations

from vm.native.contract import NativeContract
from vm.native.registry import REGISTRY
from vm.native.signers import SIGNERS
from vm.types import Address

NATIVE_CONTRACTS: dict[Address, NativeContract] = {contract.address: contract for contract in (REGISTRY, SIGNERS)}
