"""Transactions signed by eth-account decode to the same fields, sender and hash."""
from __future__ import annotations

import pytest
import rlp
from eth_account import Account
from vm.crypto import SECP256K1_N
from vm.transactions import InvalidTransaction, decode_transaction

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
SENDER = Account.from_key(KEY)
TO = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def sign(**fields) -> bytes:
    return bytes(SENDER.sign_transaction({"to": TO, "value": 5, "gas": 21_000, "nonce": 3, **fields}).raw_transaction)


@pytest.mark.parametrize("fields,tx_type", [
    ({"gasPrice": 7, "chainId": 1337}, 0),
    ({"gasPrice": 7, "chainId": 1337, "accessList": [{"address": TO, "storageKeys": ["0x" + "00" * 32]}]}, 1),
    ({"maxFeePerGas": 9, "maxPriorityFeePerGas": 2, "chainId": 1337}, 2),
])
def test_decodes_every_supported_type(fields, tx_type):
    raw = sign(**fields)
    tx = decode_transaction(raw)
    assert tx.tx_type == tx_type and tx.chain_id == 1337
    assert tx.sender.to_checksum() == SENDER.address
    assert tx.to.to_checksum() == TO and tx.value == 5 and tx.nonce == 3 and tx.gas == 21_000
    assert tx.hash == bytes(SENDER.sign_transaction({"to": TO, "value": 5, "gas": 21_000, "nonce": 3,
                                                     **fields}).hash)
    assert tx.raw == raw


def test_effective_price_follows_eip1559():
    tx = decode_transaction(sign(maxFeePerGas=100, maxPriorityFeePerGas=30, chainId=1337))
    assert tx.effective_gas_price(50) == 80 and tx.effective_tip(50) == 30
    assert tx.effective_gas_price(90) == 100 and tx.effective_tip(90) == 10


def test_rejects_unprotected_legacy():
    with pytest.raises(InvalidTransaction, match="replay-protected"):
        decode_transaction(sign(gasPrice=7))


def test_rejects_high_s_signature():
    raw = sign(maxFeePerGas=9, maxPriorityFeePerGas=2, chainId=1337)
    fields = rlp.decode(raw[1:])
    s = int.from_bytes(fields[-1], "big")
    fields[-1] = (SECP256K1_N - s).to_bytes(32, "big")
    fields[-3] = b"" if fields[-3] == b"\x01" else b"\x01"
    with pytest.raises(InvalidTransaction, match="invalid signature"):
        decode_transaction(b"\x02" + rlp.encode(fields))


def test_tampered_field_changes_sender():
    raw = sign(maxFeePerGas=9, maxPriorityFeePerGas=2, chainId=1337)
    fields = rlp.decode(raw[1:])
    fields[6] = (10**18).to_bytes(8, "big")  # value
    tampered = decode_transaction(b"\x02" + rlp.encode(fields))
    assert tampered.sender.to_checksum() != SENDER.address


@pytest.mark.parametrize("raw,reason", [
    (b"", "empty"),
    (b"\x02\xc0", "must have 12 fields"),
    (b"\x02\xff\xff", "malformed"),
    (b"\x03" + rlp.encode([]), "type not supported"),
    (rlp.encode([b"\x00\x01"] + [b""] * 8), "canonical"),
])
def test_rejects_malformed(raw, reason):
    with pytest.raises(InvalidTransaction, match=reason):
        decode_transaction(raw)
