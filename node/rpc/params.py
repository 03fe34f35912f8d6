"""Parsers for JSON-RPC arguments: each takes the JSON value and returns a
typed value or raises an `invalid argument` error naming what was wrong."""
from __future__ import annotations

from node.rpc.errors import invalid_params
from vm.types import Address, Hash32

BLOCK_TAGS = ("latest", "pending", "earliest", "safe", "finalized")


def quantity(value, name: str = "quantity") -> int:
    if isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) > 2:
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise invalid_params(f"{name}: hex string without leading zero digits expected, got {value!r}")


def data(value, name: str = "data") -> bytes:
    if isinstance(value, str) and value[:2] in ("0x", "0X"):
        try:
            return bytes.fromhex(value[2:])
        except ValueError:
            pass
    raise invalid_params(f"{name}: hex string with 0x prefix expected, got {_short(value)}")


def address(value, name: str = "address") -> Address:
    raw = data(value, name)
    if len(raw) != 20:
        raise invalid_params(f"{name}: 20-byte address expected, got {len(raw)} bytes")
    return Address(raw)


def hash32(value, name: str = "hash") -> Hash32:
    raw = data(value, name)
    if len(raw) != 32:
        raise invalid_params(f"{name}: 32-byte hash expected, got {len(raw)} bytes")
    return Hash32(raw)


def boolean(value, name: str = "flag") -> bool:
    if not isinstance(value, bool):
        raise invalid_params(f"{name}: true or false expected, got {value!r}")
    return value


def block_id(value, name: str = "block"):
    """A tag, a number, or an EIP-1898 object {blockHash} / {blockNumber}: returns a tag, int or Hash32."""
    if value is None:
        return "latest"
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value
    if isinstance(value, dict):
        if "blockHash" in value:
            return hash32(value["blockHash"], "blockHash")
        if "blockNumber" in value:
            return block_id(value["blockNumber"], "blockNumber")
    if isinstance(value, str):
        return quantity(value, name)
    raise invalid_params(f"{name}: block number, tag or {{blockHash}} expected, got {_short(value)}")


def transaction_call(value) -> dict:
    """The call object of eth_call / eth_estimateGas."""
    if not isinstance(value, dict):
        raise invalid_params("transaction call object expected")
    call = {
        "from": address(value["from"], "from") if value.get("from") else None,
        "to": address(value["to"], "to") if value.get("to") else None,
        "gas": quantity(value["gas"], "gas") if value.get("gas") else None,
        "value": quantity(value["value"], "value") if value.get("value") else 0,
    }
    if value.get("input") and value.get("data") and value["input"] != value["data"]:
        raise invalid_params('both "data" and "input" are set and not equal')
    payload = value.get("input") or value.get("data")
    call["data"] = data(payload, "input") if payload else b""
    return call


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
