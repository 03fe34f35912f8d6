"""Native contracts: Python modules that speak the Solidity ABI, dispatched through a
`ContractTable` the genesis builds. The system contracts every chain has live here
(the Registry and the Signers); the market's live in `market/contracts/`."""
from __future__ import annotations

from vm.native.contract import NativeContract
from vm.native.registry import REGISTRY
from vm.native.signers import SIGNERS

SYSTEM_CONTRACTS: tuple[NativeContract, ...] = (REGISTRY, SIGNERS)
