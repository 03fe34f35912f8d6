"""What a transaction and a contract may know about the block they run in."""
from __future__ import annotations

from dataclasses import dataclass

from vm.types import Address


@dataclass(frozen=True)
class BlockEnvironment:
    chain_id: int
    number: int
    timestamp: int
    producer: Address
    base_fee: int
    gas_limit: int
