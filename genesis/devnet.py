"""The devnet: `gridnode start` with no genesis makes a one-signer PoA chain
with the standard test mnemonic's first 20 accounts funded and registered,
the way Hardhat and Anvil do, so tutorials and wallets work out of the box."""
from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from eth_account import Account

from vm.types import Address

TEST_MNEMONIC = "test test test test test test test test test test test junk"
DEVNET_ACCOUNTS = 20
"""Accounts #0..#19: the admin (an operator) and 19 prosumers, each with elecoins and fiat tokens."""
DEVNET_KEYS = 40
"""With #20..#38, the meter oracles of prosumers #1..#19, and #39, an edge server that sells elecoins."""


@dataclass(frozen=True)
class DevAccount:
    address: Address
    private_key: bytes


def dev_accounts(count: int = DEVNET_ACCOUNTS) -> list[DevAccount]:
    """The test mnemonic's accounts on the standard path m/44'/60'/0'/0/i."""
    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for index in range(count):
        derived = Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        accounts.append(DevAccount(Address.from_hex(derived.address), bytes(derived.key)))
    return accounts


POW_DEVNET_CONSENSUS = {"engine": "pow", "difficulty": 20_000, "minDifficulty": 5_000}
"""At the default 50,000 hashes/s cap a block takes a fraction of a second to mine."""


def devnet_genesis_document(signer: Address, engine: str = "poa") -> dict:
    """The shipped devnet.json with `signer` as its only PoA signer, or under PoW."""
    document = json.loads(resources.files("genesis").joinpath("devnet.json").read_text())
    if engine == "pow":
        document["consensus"] = dict(POW_DEVNET_CONSENSUS)
    else:
        document["consensus"]["signers"] = [signer.to_checksum()]
    return document
