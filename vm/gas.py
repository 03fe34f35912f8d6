"""Gas schedule and the EIP-1559 base fee. Costs follow the EVM's so that
wallets' estimates and users' intuitions carry over."""
from __future__ import annotations

TX_BASE = 21_000
TX_DATA_ZERO = 4
TX_DATA_NONZERO = 16
TX_ACCESS_LIST_ADDRESS = 2_400
TX_ACCESS_LIST_STORAGE_KEY = 1_900

STORAGE_READ = 2_100
STORAGE_SET = 20_000
"""Writing a slot that was empty."""
STORAGE_UPDATE = 2_900
"""Changing or clearing a slot that held a value (EIP-2929 warm reset cost)."""
LOG = 375
LOG_TOPIC = 375
LOG_DATA_BYTE = 8
NATIVE_CALL = 700
"""Dispatch of a call to a native contract (the EVM's CALL base cost)."""

BASE_FEE_CHANGE_DENOMINATOR = 8
ELASTICITY_MULTIPLIER = 2


def intrinsic_gas(data: bytes, access_list: tuple = ()) -> int:
    zeros = data.count(0)
    gas = TX_BASE + zeros * TX_DATA_ZERO + (len(data) - zeros) * TX_DATA_NONZERO
    for _address, keys in access_list:
        gas += TX_ACCESS_LIST_ADDRESS + len(keys) * TX_ACCESS_LIST_STORAGE_KEY
    return gas


def next_base_fee(parent_gas_limit: int, parent_gas_used: int, parent_base_fee: int, min_base_fee: int) -> int:
    """EIP-1559's update rule, floored at the genesis `minBaseFee`."""
    target = parent_gas_limit // ELASTICITY_MULTIPLIER
    if parent_gas_used == target:
        fee = parent_base_fee
    elif parent_gas_used > target:
        delta = max(parent_base_fee * (parent_gas_used - target) // target // BASE_FEE_CHANGE_DENOMINATOR, 1)
        fee = parent_base_fee + delta
    else:
        delta = parent_base_fee * (target - parent_gas_used) // target // BASE_FEE_CHANGE_DENOMINATOR
        fee = parent_base_fee - delta
    return max(fee, min_base_fee)
