"""The genesis format: parse and check a genesis JSON file, and build block 0 from it.

Every amount is an integer (a JSON number or a decimal/0x string), every
address is checked, and every mistake is reported with the field that holds it."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from functools import cached_property

from consensus.engine import Engine, EngineServices
from consensus.factory import create_engine
from genesis.contracts import ContractSpecError, build_contract_table
from vm.blocks import Block, Header, combine_blooms
from vm.crypto import keccak256
from vm.merkle import list_root
from vm.native.registry import REGISTRY, Role
from vm.native.table import ContractTable
from vm.state import Account, State
from vm.types import ZERO_ADDRESS, ZERO_HASH, Address



class GenesisError(ValueError):
    """A genesis file that cannot start a chain; the message names the field."""


@dataclass(frozen=True)
class GenesisAccount:
    address: Address
    balance: int
    role: Role | None
    name: str


@dataclass(frozen=True)
class Genesis:
    chain_id: int
    name: str
    timestamp: int
    gas_limit: int
    base_fee: int
    min_base_fee: int
    block_time: int
    engine: str
    engine_params: dict
    admins: tuple[Address, ...]
    accounts: tuple[GenesisAccount, ...]
    nodes: tuple[str, ...]
    """Node keys (libp2p peer ids) admitted to peer from the start; admins add more on chain."""
    source: dict = field(repr=False, compare=False)

    @classmethod
    def load(cls, path: str | Path) -> "Genesis":
        try:
            document = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise GenesisError(f"genesis file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise GenesisError(f"{path}: not valid JSON: {exc}") from None
        return cls.from_json(document)

    @classmethod
    def from_json(cls, document: dict) -> "Genesis":
        if not isinstance(document, dict):
            raise GenesisError("genesis must be a JSON object")
        consensus = document.get("consensus")
        if not isinstance(consensus, dict) or not isinstance(consensus.get("engine"), str):
            raise GenesisError("consensus.engine is required (e.g. \"poa\")")
        accounts = []
        raw_accounts = document.get("accounts", {})
        if not isinstance(raw_accounts, dict):
            raise GenesisError("accounts must be an object of address → {balance, role, name}")
        for key, entry in raw_accounts.items():
            if not isinstance(entry, dict):
                raise GenesisError(f"accounts.{key} must be an object")
            role = entry.get("role")
            try:
                parsed_role = Role.parse(role) if role is not None else None
            except ValueError as exc:
                raise GenesisError(f"accounts.{key}.role: {exc}") from None
            accounts.append(GenesisAccount(_address(key, f"accounts.{key}"),
                                           _integer(entry.get("balance", 0), f"accounts.{key}.balance"),
                                           parsed_role, str(entry.get("name", ""))))
        admins = tuple(_address(a, "admins[]") for a in document.get("admins", []))
        genesis = cls(
            chain_id=_integer(document.get("chainId"), "chainId", minimum=1),
            name=str(document.get("name", "gridnode")),
            timestamp=_integer(document.get("timestamp", 0), "timestamp"),
            gas_limit=_integer(document.get("gasLimit", 30_000_000), "gasLimit", minimum=21_000),
            base_fee=_integer(document.get("baseFee", 10**9), "baseFee"),
            min_base_fee=_integer(document.get("minBaseFee", 0), "minBaseFee"),
            block_time=_integer(document.get("blockTime", 1), "blockTime", minimum=1),
            engine=consensus["engine"],
            engine_params={k: v for k, v in consensus.items() if k != "engine"},
            admins=admins,
            accounts=tuple(accounts),
            nodes=_peer_ids(document.get("nodes", [])),
            source=document,
        )
        registered = {a.address for a in genesis.accounts if a.role is not None}
        for admin in admins:
            if admin not in registered:
                raise GenesisError(f"admin {admin.to_checksum()} must also be a registered account")
        if len({a.address for a in genesis.accounts}) != len(genesis.accounts):
            raise GenesisError("accounts lists an address twice")
        genesis.create_engine()
        market = genesis.contracts.by_name("V2VMarket")  # also checks the "contracts" section
        if market is not None and genesis.engine != "posoc":
            raise GenesisError("contracts.V2VMarket trades on PoSOC's windows and tariff: it needs consensus.engine "
                               "\"posoc\"")
        return genesis

    def create_engine(self) -> Engine:
        try:
            return create_engine(self.engine, self.engine_params, self.block_time, self.engine_services())
        except ValueError as exc:
            raise GenesisError(f"consensus: {exc}") from None

    def engine_services(self) -> EngineServices:
        """What score-based engines read from the market: the Meters contract's readings and
        slot length, the EV chargers' reports and hour length, and the producer's
        merge-and-split search."""
        services = EngineServices(partition=_merge_and_split)
        meters = self.contracts.by_name("Meters")
        if meters is not None and meters.address is not None:
            from market.contracts.meters import Meters

            def reading(state: State, prosumer: Address, slot: int) -> tuple[int, int] | None:
                posted = Meters.reading_at(state, meters.address, prosumer, slot)
                return None if posted is None else (posted.generation_wh, posted.consumption_wh)

            services = replace(services, reading=reading, slot_seconds=meters.params["slotSeconds"])
        chargers = self.contracts.by_name("EVChargers")
        if chargers is not None and chargers.address is not None:
            from market.contracts.ev_chargers import EVChargers

            def ev_report(state: State, ev: Address, hour: int) -> tuple[int, int, int, bool, int, int] | None:
                r = EVChargers.report_at(state, chargers.address, ev, hour)
                return None if r is None else (r.charged_wh, r.discharged_wh, r.soc_ppm, r.departing,
                                               r.capacity_wh, r.soc_max_ppm)

            services = replace(services, ev_report=ev_report, hour_seconds=chargers.params["hourSeconds"])
        return services

    @cached_property
    def contracts(self) -> ContractTable:
        """The chain's contract table: system contracts plus the genesis' "contracts"."""
        try:
            return build_contract_table(self.source.get("contracts", {}))
        except ContractSpecError as exc:
            raise GenesisError(str(exc)) from None

    def to_json(self) -> str:
        return json.dumps(self.source, indent=2) + "\n"

    def write_state(self, state: State) -> None:
        """Balances, every contract's code and initial storage, the engine's own state, the
        registry's members and admins."""
        for account in self.accounts:
            state.set_account(account.address, Account(0, account.balance))
        self.contracts.write_genesis(state)
        self.create_engine().genesis_state(state)
        REGISTRY.write_members(state, list(self.admins),
                               [(a.address, a.role, a.name) for a in self.accounts if a.role is not None],
                               list(self.nodes))

    def block(self, state_root) -> Block:
        header = Header(
            parent_hash=ZERO_HASH, number=0, timestamp=self.timestamp, producer=ZERO_ADDRESS,
            state_root=state_root, transactions_root=list_root([]), receipts_root=list_root([]),
            logs_bloom=combine_blooms([]), gas_limit=self.gas_limit, gas_used=0, base_fee=self.base_fee,
            difficulty=1, extra_data=self.document_hash)
        return Block(header, ())

    @property
    def document_hash(self) -> bytes:
        """keccak of the canonical genesis JSON, kept in block 0's extra data so that
        the genesis hash commits to every parameter, consensus settings included."""
        return keccak256(json.dumps(self.source, sort_keys=True, separators=(",", ":")).encode())


def _merge_and_split(community, model) -> list[tuple[int, ...]]:
    """Algorithm 3's stable partition, in floats with HiGHS (the proposer's search; loaded on first use)."""
    from market.economics.coalition import form_coalitions
    return list(form_coalitions(community, model).partition)


def _integer(value, name: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or value is None:
        raise GenesisError(f"{name} must be an integer")
    if isinstance(value, str):
        try:
            value = int(value, 16) if value.lower().startswith("0x") else int(value)
        except ValueError:
            raise GenesisError(f"{name} must be an integer, got {value!r}") from None
    if not isinstance(value, int) or value < minimum:
        raise GenesisError(f"{name} must be an integer ≥ {minimum}")
    return value


def _peer_ids(value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise GenesisError("nodes must be a list of libp2p peer ids (strings)")
    return tuple(value)


def _address(value, name: str) -> Address:
    try:
        return Address.from_hex(value)
    except (ValueError, TypeError):
        raise GenesisError(f"{name}: {value!r} is not an address") from None
