"""Meters: paper 002's smart-meter, PV and battery state agents (SMA/PVA/BSA) as oracles.

A Registry admin registers one meter oracle (an account with role METER_ORACLE)
for a prosumer (any registered account). Each settlement slot the oracle posts
that prosumer's reading: energy generated and consumed in the slot (Wh) and the
battery's state of charge at its end (Wh). Slots are block time cut into
`slotSeconds` pieces (genesis param, default 900 s = 15 minutes):

    slot = block.timestamp // slotSeconds

A reading may be posted for the current slot or a past one (a meter that was
offline catches up), never for a future slot, and only once per prosumer and
slot: a reading on chain is final. Per prosumer the contract keeps the running
totals of generation and consumption, the highest slot posted and the number of
readings. The energy token mints against `totalGeneration`, the offers confirm
delivery against the buyer's readings, and proof-of-energy-generation reads them
gas-free through `Meters.reading_at`.

Genesis params: `slotSeconds`, `oracles` ({prosumer: oracle}); the genesis does
not check roles (the Registry is written beside it), `registerMeter` does."""
from __future__ import annotations

from dataclasses import dataclass

from market.contracts.addresses import METERS
from market.contracts.params import UINT256_MAX, as_address, parse_address
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.roles import Role
from vm.native.storage import Mapping, Struct, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address

DEFAULT_SLOT_SECONDS = 900
MAX_SLOT_SECONDS = 7 * 24 * 3600
"""A week: longer slots would make a settlement period longer than any market here uses."""
MAX_GENESIS_METERS = 100_000

SLOT_SECONDS = Value(b"meters.slotSeconds", "uint64")
ORACLES = Mapping(b"meters.oracle", "address")                  # prosumer -> oracle
READING = Struct(generationWh="uint256", consumptionWh="uint256", batteryWh="uint256")
READINGS = Mapping(b"meters.reading", READING)                  # prosumer, slot -> reading; None = not posted
TOTAL_GENERATION = Mapping(b"meters.totalGeneration", "uint256")
TOTAL_CONSUMPTION = Mapping(b"meters.totalConsumption", "uint256")
LAST_SLOT = Mapping(b"meters.lastSlot", "uint64")               # prosumer -> highest slot posted
READING_COUNT = Mapping(b"meters.readingCount", "uint256")


@dataclass(frozen=True)
class Reading:
    """One posted reading, as `Meters.reading_at` returns it."""

    generation_wh: int
    """Energy generated in the slot (PV), Wh."""
    consumption_wh: int
    """Energy consumed in the slot, Wh."""
    battery_wh: int
    """The battery's state of charge at the end of the slot, Wh."""


class Meters(NativeContract):
    name = "Meters"
    abi_file = "meters.abi.json"
    default_address = METERS

    # -- genesis ------------------------------------------------------------
    @classmethod
    def parse_params(cls, params: dict) -> dict:
        unknown = sorted(set(params) - {"slotSeconds", "oracles"})
        if unknown:
            raise ValueError(f"Meters: unknown params {unknown}; known: ['oracles', 'slotSeconds']")
        slot_seconds = params.get("slotSeconds", DEFAULT_SLOT_SECONDS)
        if isinstance(slot_seconds, bool) or not isinstance(slot_seconds, int) \
                or not 1 <= slot_seconds <= MAX_SLOT_SECONDS:
            raise ValueError(f"Meters.slotSeconds: expected an integer 1..{MAX_SLOT_SECONDS}, got {slot_seconds!r}")
        raw_oracles = params.get("oracles", {})
        if not isinstance(raw_oracles, dict) or len(raw_oracles) > MAX_GENESIS_METERS:
            raise ValueError(f"Meters.oracles: expected an object of at most {MAX_GENESIS_METERS} "
                             "prosumer: oracle entries")
        oracles: dict[Address, Address] = {}
        for raw_prosumer, raw_oracle in raw_oracles.items():
            prosumer = parse_address(raw_prosumer, "Meters.oracles key")
            oracle = parse_address(raw_oracle, f"Meters.oracles[{raw_prosumer}]")
            if ZERO_ADDRESS in (prosumer, oracle):
                raise ValueError(f"Meters.oracles: the zero address in {raw_prosumer}: {raw_oracle}")
            if prosumer == oracle:
                raise ValueError(f"Meters.oracles: {raw_prosumer} cannot be its own meter oracle")
            if prosumer in oracles:
                raise ValueError(f"Meters.oracles: {prosumer.to_checksum()} listed twice")
            oracles[prosumer] = oracle
        return {"slotSeconds": slot_seconds, "oracles": oracles}

    def write_genesis(self, state: State) -> None:
        super().write_genesis(state)
        SLOT_SECONDS.write(state, self.address, self.params["slotSeconds"])
        for prosumer, oracle in self.params["oracles"].items():
            ORACLES.write(state, self.address, prosumer, oracle.to_checksum())

    # -- gas-free readers (PoEG, RPC, agents' tests) -----------------------------
    @staticmethod
    def reading_at(state: State, address: Address, prosumer: Address, slot: int) -> Reading | None:
        """The reading posted for `prosumer` in `slot` by the Meters contract at `address`, or None."""
        stored = READINGS.read(state, address, prosumer, slot)
        if stored is None:
            return None
        return Reading(stored["generationWh"], stored["consumptionWh"], stored["batteryWh"])

    @staticmethod
    def oracle_at(state: State, address: Address, prosumer: Address) -> Address | None:
        """The meter oracle registered for `prosumer`, or None."""
        oracle = as_address(ORACLES.read(state, address, prosumer))
        return None if oracle == ZERO_ADDRESS else oracle

    @staticmethod
    def slot_seconds_at(state: State, address: Address) -> int:
        return SLOT_SECONDS.read(state, address)

    # -- views ------------------------------------------------------------------
    @abi_function("slotSeconds")
    def _slot_seconds(self, ctx: CallContext) -> int:
        return SLOT_SECONDS.get(ctx)

    @abi_function("currentSlot")
    def _current_slot(self, ctx: CallContext) -> int:
        return ctx.env.timestamp // SLOT_SECONDS.get(ctx)

    @abi_function("oracleOf")
    def _oracle_of(self, ctx: CallContext, prosumer: str) -> str:
        return as_address(ORACLES.get(ctx, Address.from_hex(prosumer))).to_checksum()

    @abi_function("reading")
    def _reading(self, ctx: CallContext, prosumer: str, slot: int) -> tuple[bool, int, int, int]:
        stored = READINGS.get(ctx, Address.from_hex(prosumer), slot)
        if stored is None:
            return False, 0, 0, 0
        return True, stored["generationWh"], stored["consumptionWh"], stored["batteryWh"]

    @abi_function("totalGeneration")
    def _total_generation(self, ctx: CallContext, prosumer: str) -> int:
        return TOTAL_GENERATION.get(ctx, Address.from_hex(prosumer))

    @abi_function("totalConsumption")
    def _total_consumption(self, ctx: CallContext, prosumer: str) -> int:
        return TOTAL_CONSUMPTION.get(ctx, Address.from_hex(prosumer))

    @abi_function("lastSlot")
    def _last_slot(self, ctx: CallContext, prosumer: str) -> int:
        return LAST_SLOT.get(ctx, Address.from_hex(prosumer))

    @abi_function("readingCount")
    def _reading_count(self, ctx: CallContext, prosumer: str) -> int:
        return READING_COUNT.get(ctx, Address.from_hex(prosumer))

    # -- state changes --------------------------------------------------------------
    @abi_function("registerMeter")
    def _register_meter(self, ctx: CallContext, prosumer: str, oracle: str) -> None:
        """Register (or replace) the prosumer's meter oracle; readings already posted stay."""
        self.require_admin(ctx, ctx.caller, reason="meters: caller is not an admin")
        account, meter = Address.from_hex(prosumer), Address.from_hex(oracle)
        if self.role_of(ctx, account) == Role.NONE:
            raise Revert("meters: prosumer is not registered")
        if self.role_of(ctx, meter) != Role.METER_ORACLE:
            raise Revert("meters: oracle does not have the meter oracle role")
        if account == meter:
            raise Revert("meters: an account cannot be its own meter oracle")
        if as_address(ORACLES.get(ctx, account)) == meter:
            raise Revert("meters: oracle already registered for the prosumer")
        ORACLES.set(ctx, account, meter.to_checksum())
        self.emit(ctx, "MeterRegistered", account.to_checksum(), meter.to_checksum())

    @abi_function("postReading")
    def _post_reading(self, ctx: CallContext, prosumer: str, slot: int, generation_wh: int,
                      consumption_wh: int, battery_wh: int) -> None:
        account = Address.from_hex(prosumer)
        oracle = as_address(ORACLES.get(ctx, account))
        if oracle == ZERO_ADDRESS:
            raise Revert("meters: no meter registered for the prosumer")
        if ctx.caller != oracle:
            raise Revert("meters: caller is not the prosumer's meter oracle")
        if slot > ctx.env.timestamp // SLOT_SECONDS.get(ctx):
            raise Revert("meters: slot is in the future")
        if READINGS.get(ctx, account, slot) is not None:
            raise Revert("meters: reading already posted for this slot")
        generated = TOTAL_GENERATION.get(ctx, account)
        consumed = TOTAL_CONSUMPTION.get(ctx, account)
        if generation_wh > UINT256_MAX - generated or consumption_wh > UINT256_MAX - consumed:
            raise Revert("meters: running total would exceed 2**256-1")
        READINGS.set(ctx, account, slot, {"generationWh": generation_wh,
                                          "consumptionWh": consumption_wh, "batteryWh": battery_wh})
        TOTAL_GENERATION.set(ctx, account, generated + generation_wh)
        TOTAL_CONSUMPTION.set(ctx, account, consumed + consumption_wh)
        if slot > LAST_SLOT.get(ctx, account):
            LAST_SLOT.set(ctx, account, slot)
        READING_COUNT.set(ctx, account, READING_COUNT.get(ctx, account) + 1)
        self.emit(ctx, "ReadingPosted", account.to_checksum(), slot, generation_wh, consumption_wh, battery_wh)
