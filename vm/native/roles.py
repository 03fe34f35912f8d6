"""Roles the Registry assigns, and where the Registry lives: what every contract checks
permissions against (imported by the contract base without importing the Registry)."""
from __future__ import annotations

from enum import IntEnum

from vm.types import Address

REGISTRY_ADDRESS = Address(bytes.fromhex("6772696400000000000000000000000000000001"))  # "grid" ‖ 1
SIGNERS_ADDRESS = Address(bytes.fromhex("6772696400000000000000000000000000000002"))  # "grid" ‖ 2


class Role(IntEnum):
    NONE = 0
    PROSUMER = 1
    RETAILER = 2
    EDGE_SERVER = 3
    EV = 4
    METER_ORACLE = 5
    OPERATOR = 6

    @classmethod
    def parse(cls, text: str) -> "Role":
        """Accept the genesis spelling: 'prosumer', 'edge_server', 'meter-oracle', …"""
        try:
            role = cls[text.strip().upper().replace("-", "_").replace(" ", "_")]
        except KeyError:
            raise ValueError(f"unknown role {text!r}; one of {', '.join(r.name.lower() for r in cls if r)}") from None
        if role is cls.NONE:
            raise ValueError("role 'none' cannot be assigned")
        return role
