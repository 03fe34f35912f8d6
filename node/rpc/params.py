"""Parsers for JSON-RPC arguments: each takes the JSON value and returns a
typed value or raises an `invalid argument` error naming what was wrong.

Hex follows go-ethereum's `hexutil` rules exactly, with its error texts: a
quantity is "0x" then hex digits without leading zeros ("0x0" for zero), at
most 256 bits (64 for block numbers and gas); data is "0x" then an even number
of hex digits. Nothing else gets through: no sign, no whitespace, no
underscores, no non-ASCII digits (Python's `int(x, 16)` accepts "0x1_0" and
" 0x10", `bytes.fromhex` accepts spaces, `int` accepts Arabic-Indic digits)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from node.rpc.errors import invalid_params
from vm.types import Address, Hash32

BLOCK_TAGS = ("latest", "pending", "earliest", "safe", "finalized")
MAX_BLOCK_NUMBER = 2**63 - 1
"""go-ethereum's `rpc.BlockNumber` is an int64: larger numbers are refused, not wrapped."""
MAX_LOG_TOPICS = 4
"""Topic positions in a log filter: LOG0..LOG4 carry at most four (go-ethereum's `maxTopics`)."""
MAX_LOG_ALTERNATIVES = 1000
"""Addresses, or topics at one position, one log filter may list. Each is a bloom
probe per block scanned, so the list length multiplies the work of a query.
go-ethereum's `--rpc.logquerylimit` (default 1,000) bounds the same lists."""

_HEX_DIGITS = re.compile("[0-9a-fA-F]*")


def _hex_digits(value, name: str) -> str:
    """The digits after the 0x prefix, or an error saying what is wrong with them."""
    if not isinstance(value, str):
        raise invalid_params(f"{name}: hex string expected, got {_short(value)}")
    if value[:2] not in ("0x", "0X"):
        raise invalid_params(f"{name}: hex string without 0x prefix, got {_short(value)}")
    digits = value[2:]
    if not _HEX_DIGITS.fullmatch(digits):
        raise invalid_params(f"{name}: invalid hex string, got {_short(value)}")
    return digits


def quantity(value, name: str = "quantity", bits: int = 256) -> int:
    """A non-negative integer of at most `bits` bits (uint256 unless the field is narrower)."""
    digits = _hex_digits(value, name)
    if not digits:
        raise invalid_params(f'{name}: hex string "0x" is not a number (zero is "0x0")')
    if len(digits) > 1 and digits[0] == "0":
        raise invalid_params(f"{name}: hex number with leading zero digits, got {_short(value)}")
    if len(digits) > bits // 4:
        raise invalid_params(f"{name}: hex number > {bits} bits")
    return int(digits, 16)


def data(value, name: str = "data") -> bytes:
    digits = _hex_digits(value, name)
    if len(digits) % 2:
        raise invalid_params(f"{name}: hex string of odd length, got {_short(value)}")
    return bytes.fromhex(digits)


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
        raise invalid_params(f"{name}: true or false expected, got {_short(value)}")
    return value


def block_number(value, name: str = "block"):
    """A tag or a block number (what log filters accept): returns the tag or the int."""
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value
    if not isinstance(value, str):
        raise invalid_params(f"{name}: block number or tag expected, got {_short(value)}")
    number = quantity(value, name, bits=64)
    if number > MAX_BLOCK_NUMBER:
        raise invalid_params(f"{name}: block number larger than int64")
    return number


def block_id(value, name: str = "block"):
    """A tag, a number, or an EIP-1898 object {blockHash} / {blockNumber}: returns a tag, int or Hash32."""
    if value is None:
        return "latest"
    if not isinstance(value, dict):
        if not isinstance(value, str):
            raise invalid_params(f"{name}: block number, tag or {{blockHash}} expected, got {_short(value)}")
        return block_number(value, name)
    if "blockHash" in value and "blockNumber" in value:
        raise invalid_params(f"{name}: cannot specify both blockHash and blockNumber, choose one or the other")
    if "requireCanonical" in value:
        boolean(value["requireCanonical"], "requireCanonical")
    if "blockHash" in value:
        return hash32(value["blockHash"], "blockHash")
    if "blockNumber" in value:
        return block_number(value["blockNumber"], "blockNumber")
    raise invalid_params(f"{name}: object needs blockHash or blockNumber, got {_short(value)}")


def _optional(call: dict, key: str, parse, *args):
    """A field of a call object: absent and null mean unset; anything else must parse."""
    value = call.get(key)
    return None if value is None else parse(value, key, *args)


def transaction_call(value) -> dict:
    """The call object of eth_call / eth_estimateGas."""
    if not isinstance(value, dict):
        raise invalid_params("transaction call object expected")
    inputs = [_optional(value, key, data) for key in ("input", "data")]
    if None not in inputs and inputs[0] != inputs[1]:
        raise invalid_params('both "data" and "input" are set and not equal')
    payload = inputs[0] if inputs[0] is not None else inputs[1]
    return {
        "from": _optional(value, "from", address),
        "to": _optional(value, "to", address),
        "gas": _optional(value, "gas", quantity, 64),
        "value": _optional(value, "value", quantity) or 0,
        "data": payload or b"",
    }


@dataclass(frozen=True)
class LogFilter:
    """The criteria of eth_getLogs / eth_newFilter, parsed and bounded."""

    addresses: frozenset[Address] | None
    """Logs from any of these contracts; None (or an empty list sent) matches every address."""
    topics: tuple[frozenset[Hash32] | None, ...]
    """Per position, the topics accepted there; None (null or []) accepts any topic."""
    from_block: int | str
    """A block number or a tag, as `block_number` returns it."""
    to_block: int | str
    block_hash: Hash32 | None
    """Set for a one-block query by hash (then from/to are "latest" and unused)."""

    @property
    def size(self) -> int:
        """Addresses and topics held: what storing this filter costs."""
        return len(self.addresses or ()) + sum(len(options or ()) for options in self.topics)


def _alternatives(value, name: str, parse) -> frozenset | None:
    """One address or topic, a list of them, or null/[] for "any"; at most MAX_LOG_ALTERNATIVES."""
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    if len(items) > MAX_LOG_ALTERNATIVES:
        raise invalid_params(f"exceed max addresses or topics per search position: {name} lists "
                             f"{len(items)}, limit {MAX_LOG_ALTERNATIVES}")
    return frozenset(parse(item, name) for item in items) or None


def _block_or_latest(log_query: dict, key: str):
    bound = _optional(log_query, key, block_number)
    return "latest" if bound is None else bound


def log_filter(value) -> LogFilter:
    if not isinstance(value, dict):
        raise invalid_params("filter object expected")
    block_hash = _optional(value, "blockHash", hash32)
    if block_hash is not None and (value.get("fromBlock") is not None or value.get("toBlock") is not None):
        raise invalid_params("blockHash cannot be combined with fromBlock/toBlock")
    raw_topics = value.get("topics")
    if raw_topics is None:
        raw_topics = []
    if not isinstance(raw_topics, list):
        raise invalid_params(f"topics must be a list of at most {MAX_LOG_TOPICS} positions")
    if len(raw_topics) > MAX_LOG_TOPICS:
        raise invalid_params(f"exceed max topics: {len(raw_topics)} positions, limit {MAX_LOG_TOPICS}")
    return LogFilter(
        addresses=_alternatives(value.get("address"), "address", address),
        topics=tuple(_alternatives(position, "topic", hash32) for position in raw_topics),
        from_block=_block_or_latest(value, "fromBlock"),
        to_block=_block_or_latest(value, "toBlock"),
        block_hash=block_hash)


def _short(value) -> str:
    """The value as an error message shows it: cut short, and never a whole JSON tree."""
    if isinstance(value, (list, dict)):
        return "a JSON " + ("array" if isinstance(value, list) else "object")
    if isinstance(value, str) and len(value) > 80:
        return repr(value[:77]) + "..."
    if isinstance(value, int) and value.bit_length() > 256:
        return "a number of more than 256 bits"
    return repr(value)
