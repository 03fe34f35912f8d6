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
LOCALNET_NAME = "gridnode-localnet"
"""The genesis name `gridnode localnet` gives its chains: a test chain, the only kind a node
started with `--harness` (byzantine modes, clock skew) accepts."""
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


POEG_DEVNET_SLOT_SECONDS = 30
"""A PoEG devnet settles its 19 prosumers' meter slot every 30 s."""


def devnet_genesis_document(signer: Address, engine: str = "poa") -> dict:
    """The shipped devnet.json with `signer` as its only PoA signer, or under PoW, or as the
    only PoEG validator."""
    if engine == "poeg":
        return poeg_genesis_document([signer], slot_seconds=POEG_DEVNET_SLOT_SECONDS)
    if engine == "posoc":
        return posoc_genesis_document([signer])
    document = json.loads(resources.files("genesis").joinpath("devnet.json").read_text())
    if engine == "pow":
        document["consensus"] = dict(POW_DEVNET_CONSENSUS)
    else:
        document["consensus"]["signers"] = [signer.to_checksum()]
    return document


LIVE_EXTRA_BASE = DEVNET_KEYS
"""Prosumers beyond the devnet's 19 take mnemonic accounts from #40 on, each followed by its oracle."""
MAX_POEG_DEVNET_PROSUMERS = 50


def live_prosumer_accounts(prosumers: int) -> list[tuple[DevAccount, DevAccount]]:
    """(prosumer, meter oracle) pairs: devnet #1..#19 with their oracles #20..#38 first, then
    #40, #42, … with oracles #41, #43, …, so a smaller run's accounts are a larger one's prefix."""
    extra = max(prosumers - (DEVNET_ACCOUNTS - 1), 0)
    accounts = dev_accounts(LIVE_EXTRA_BASE + 2 * extra)
    pairs = [(accounts[1 + k], accounts[DEVNET_ACCOUNTS + k]) for k in range(min(prosumers, DEVNET_ACCOUNTS - 1))]
    pairs += [(accounts[LIVE_EXTRA_BASE + 2 * k], accounts[LIVE_EXTRA_BASE + 2 * k + 1]) for k in range(extra)]
    return pairs


def _scored_consensus(document: dict, engine: str, validators: list[Address], stake: int, timeout: int,
                      **params) -> dict:
    """A score-based engine's consensus section, with every validator funded and registered."""
    document["consensus"] = {"engine": engine,
                             "validators": [{"address": v.to_checksum(), "stake": str(stake)} for v in validators],
                             "timeout": timeout, **params}
    for validator in validators:
        document["accounts"].setdefault(validator.to_checksum(), {"balance": str(10**22), "role": "edge_server",
                                                                  "name": "validator"})
    return document


def poeg_genesis_document(validators: list[Address], prosumers: int = 19, slot_seconds: int = 10, seed: int = 3,
                          dist: str = "uniform", stake: int = 10**21, timeout: int = 2) -> dict:
    """The devnet under proof of energy generation: `validators` produce (each funded and
    bonding `stake`); 1..50 prosumers (`live_prosumer_accounts`: the devnet's, then more, funded
    and registered as prosumer and meter oracle, each oracle in the Meters genesis), bonded
    round-robin, at positions from the coalition simulation's generator (20 km × 20 km around
    the EDC, `dist`, `seed`); the Meters slot is the settlement slot."""
    from market.economics.community import random_community  # numpy: only when a PoEG genesis is made
    import numpy as np

    if not 1 <= prosumers <= MAX_POEG_DEVNET_PROSUMERS:
        raise ValueError(f"a PoEG devnet takes 1..{MAX_POEG_DEVNET_PROSUMERS} prosumers")
    document = devnet_genesis_document(validators[0], "poa")
    community = random_community(prosumers, dist, np.random.default_rng(seed))
    pairs = live_prosumer_accounts(prosumers)
    for k, (prosumer, oracle) in enumerate(pairs[DEVNET_ACCOUNTS - 1:], start=DEVNET_ACCOUNTS):
        document["accounts"][prosumer.address.to_checksum()] = {"balance": str(10**22), "role": "prosumer",
                                                                "name": f"live-prosumer-{k}"}
        document["accounts"][oracle.address.to_checksum()] = {"balance": str(10**21), "role": "meter_oracle",
                                                              "name": f"live-meter-{k}"}
    meters = document["contracts"]["Meters"]["params"]
    meters["slotSeconds"] = slot_seconds
    meters["oracles"].update({p.address.to_checksum(): o.address.to_checksum() for p, o in pairs})
    return _scored_consensus(document, "poeg", validators, stake, timeout, prosumers=[
        {"address": p.address.to_checksum(), "x": community.x_m[k], "y": community.y_m[k],
         "validator": validators[k % len(validators)].to_checksum()} for k, (p, _) in enumerate(pairs)])


EV_CAPACITY_WH = 42_000
"""Table 4.1's Toyota RAV4 battery."""
EV_SOC_MAX_PPM = 800_000
EV_START_WH = EV_CAPACITY_WH // 2
"""Each EV starts with its battery's energy at 50 % SOC as energy tokens, which it sells V2V."""


def posoc_genesis_document(validators: list[Address], evs: int = 10, hour_seconds: int = 10,
                           window_hours: int = 24, stake: int = 10**21, timeout: int = 2) -> dict:
    """The devnet under proof of state of charge: `validators` produce (each funded and bonding
    `stake`); the last `evs` of devnet accounts #1..#19 are EVs (Table 4.1's 42 kWh battery, SOC
    ≤ 80 %), bonded round-robin, their meter oracles their chargers, reporting every `hour_seconds`;
    the accounts before them stay prosumers. The EVs hold their battery's energy as energy tokens
    and trade it with each other on the V2VMarket."""
    if not 1 <= evs < DEVNET_ACCOUNTS:
        raise ValueError(f"the devnet has {DEVNET_ACCOUNTS - 1} accounts that can be EVs")
    document = devnet_genesis_document(validators[0], "poa")
    accounts = dev_accounts(DEVNET_KEYS)
    names = list(document["accounts"])
    first = DEVNET_ACCOUNTS - evs
    chargers = {}
    for k in range(first, DEVNET_ACCOUNTS):
        ev, charger = accounts[k].address.to_checksum(), accounts[DEVNET_ACCOUNTS + k - 1].address.to_checksum()
        document["accounts"][names[k]]["role"] = "ev"
        chargers[ev] = {"charger": charger, "capacityWh": EV_CAPACITY_WH, "socMaxPpm": EV_SOC_MAX_PPM}
    document["contracts"]["EVChargers"] = {"params": {"hourSeconds": hour_seconds, "evs": chargers}}
    document["contracts"]["EnergyToken"]["params"]["balances"] = {ev: str(EV_START_WH) for ev in chargers}
    document["contracts"]["V2VMarket"] = {"params": {}}
    return _scored_consensus(document, "posoc", validators, stake, timeout, windowHours=window_hours, evs=[
        {"address": accounts[k].address.to_checksum(), "validator": validators[k % len(validators)].to_checksum()}
        for k in range(first, DEVNET_ACCOUNTS)])
