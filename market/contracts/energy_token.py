"""The energy token (paper 002's virtualized watts): an ERC-20 where 1 token = 1 Wh.

Besides the shared ERC-20 and its issuers (market/contracts/erc20.py), energy
enters the chain by `mintWatts(prosumer, wh)` (paper 002's MintWatts): only the
prosumer's registered meter oracle may call it, and only for generation that
oracle has already reported to the Meters contract and that has not been minted
yet, so every energy token a prosumer receives this way is backed by a metered
reading:

    mintable(prosumer) = Meters.totalGeneration(prosumer) - mintedWatts(prosumer)

The tokens go to the prosumer (not the oracle). Meters is read through a
contract call (`self.invoke`), never by reading its storage; its address is the
`meters` genesis param (default market.contracts.addresses.METERS)."""
from __future__ import annotations

from market.contracts.addresses import ENERGY_TOKEN, METERS
from market.contracts.erc20 import ERC20Token
from market.contracts.params import as_address, parse_address
from vm.native.contract import CallContext, Revert, abi_function
from vm.native.storage import Mapping, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

METERS_ADDRESS = Value(b"energy.meters", "address")
MINTED = Mapping(b"energy.minted", "uint256")       # prosumer -> Wh minted by mintWatts so far


class EnergyToken(ERC20Token):
    name = "EnergyToken"
    abi_file = "energy_token.abi.json"
    default_address = ENERGY_TOKEN
    token_name = "Grid Energy Watt-hour"
    token_symbol = "EWH"
    token_decimals = 0
    reason_prefix = "energy"

    @classmethod
    def known_params(cls) -> set[str]:
        return super().known_params() | {"meters"}

    @classmethod
    def parse_params(cls, params: dict) -> dict:
        parsed = super().parse_params(params)
        meters = params.get("meters")
        parsed["meters"] = METERS if meters is None else parse_address(meters, f"{cls.name}.meters")
        if parsed["meters"] == ZERO_ADDRESS:
            raise ValueError(f"{cls.name}.meters: the zero address is not a Meters contract")
        return parsed

    def write_genesis(self, state: State) -> None:
        super().write_genesis(state)
        METERS_ADDRESS.write(state, self.address, self.params["meters"].to_checksum())

    @staticmethod
    def minted_at(state: State, token: Address, prosumer: Address) -> int:
        """Wh minted for `prosumer` by mintWatts, read gas-free."""
        return MINTED.read(state, token, prosumer)

    # -- paper 002's MintWatts ------------------------------------------------------
    @abi_function("mintWatts")
    def _mint_watts(self, ctx: CallContext, prosumer: str, wh: int) -> bool:
        account = Address.from_hex(prosumer)
        meters = as_address(METERS_ADDRESS.get(ctx))
        (oracle,) = self.invoke(ctx, meters, "oracleOf(address)", (account.to_checksum(),), returns=("address",))
        oracle = as_address(oracle)
        if oracle == ZERO_ADDRESS:
            raise Revert("energy: no meter oracle registered for the prosumer")
        if ctx.caller != oracle:
            raise Revert("energy: caller is not the prosumer's meter oracle")
        if wh == 0:
            raise Revert("energy: zero amount")
        available = self._unminted(ctx, meters, account)
        if wh > available:
            raise Revert("energy: amount exceeds the reported generation not yet minted")
        MINTED.set(ctx, account, MINTED.get(ctx, account) + wh)
        self.create(ctx, account, wh)
        self.emit(ctx, "WattsMinted", account.to_checksum(), oracle.to_checksum(), wh)
        return True

    @abi_function("mintable")
    def _mintable(self, ctx: CallContext, prosumer: str) -> int:
        return self._unminted(ctx, as_address(METERS_ADDRESS.get(ctx)), Address.from_hex(prosumer))

    @abi_function("mintedWatts")
    def _minted_watts(self, ctx: CallContext, prosumer: str) -> int:
        return MINTED.get(ctx, Address.from_hex(prosumer))

    @abi_function("meters")
    def _meters(self, ctx: CallContext) -> str:
        return as_address(METERS_ADDRESS.get(ctx)).to_checksum()

    def _unminted(self, ctx: CallContext, meters: Address, prosumer: Address) -> int:
        (generated,) = self.invoke(ctx, meters, "totalGeneration(address)", (prosumer.to_checksum(),),
                                   returns=("uint256",))
        # Meters' totals only grow, so this cannot go below zero; max() keeps a broken
        # Meters contract from making mintWatts mint on a negative remainder.
        return max(generated - MINTED.get(ctx, prosumer), 0)
