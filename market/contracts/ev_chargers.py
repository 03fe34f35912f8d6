"""EV chargers: paper 003 ch. 4's EVs on chain and their hourly charger reports (PoSOC's input).

Each EV (an account with Registry role EV) has a battery capacity and an upper SOC limit, and a
charger oracle that reports, per hour, the energy it charged and discharged and the state of
charge (in ppm of the capacity) at the end of the hour, with a flag when the EV departs in that
hour (the SOC at departure, eq. 4.1's room term). Hours are block time cut into `hourSeconds`
pieces (default 3,600; a test network shortens them):

    hour = block.timestamp // hourSeconds

A report may be for the current hour or a past one, never a future hour, and only once per EV
and hour: a report on chain is final. Proof of state of charge reads them gas-free through
`EVChargers.report_at` (the engine never imports the market; the genesis hands it this reader).

Genesis params: `hourSeconds`, `evs` {ev: {charger, capacityWh, socMaxPpm}}; the EVs' roles are
the Registry's (written beside it)."""
from __future__ import annotations

from dataclasses import dataclass

from market.contracts.addresses import EV_CHARGERS
from market.contracts.params import as_address, parse_address, parse_amount
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.roles import Role
from vm.native.storage import Mapping, Struct, Value
from vm.state import State
from vm.types import ZERO_ADDRESS, Address


DEFAULT_HOUR_SECONDS = 3600
MAX_GENESIS_EVS = 1024
PPM = 1_000_000

HOUR_SECONDS = Value(b"ev.hourSeconds", "uint64")
EV = Struct(charger="address", capacityWh="uint256", socMaxPpm="uint32")
EVS = Mapping(b"ev.ev", EV)
REPORT = Struct(chargedWh="uint256", dischargedWh="uint256", socPpm="uint32", departing="bool")
REPORTS = Mapping(b"ev.report", REPORT)                  # ev, hour -> report; None = not reported


@dataclass(frozen=True)
class Report:
    charged_wh: int
    discharged_wh: int
    soc_ppm: int
    """State of charge at the end of the hour (or at departure), ppm of the capacity."""
    departing: bool
    capacity_wh: int
    soc_max_ppm: int


class EVChargers(NativeContract):
    name = "EVChargers"
    abi_file = "ev_chargers.abi.json"
    default_address = EV_CHARGERS

    @classmethod
    def parse_params(cls, params: dict) -> dict:
        unknown = sorted(set(params) - {"hourSeconds", "evs"})
        if unknown:
            raise ValueError(f"EVChargers: unknown params {unknown}; known: ['evs', 'hourSeconds']")
        hour = params.get("hourSeconds", DEFAULT_HOUR_SECONDS)
        if isinstance(hour, bool) or not isinstance(hour, int) or not 1 <= hour <= 24 * 3600:
            raise ValueError(f"EVChargers.hourSeconds: expected an integer 1..86400, got {hour!r}")
        raw = params.get("evs", {})
        if not isinstance(raw, dict) or len(raw) > MAX_GENESIS_EVS:
            raise ValueError(f"EVChargers.evs: expected an object of at most {MAX_GENESIS_EVS} ev: {{charger, "
                             "capacityWh, socMaxPpm}} entries")
        evs: dict[Address, dict] = {}
        for raw_ev, entry in raw.items():
            ev = parse_address(raw_ev, "EVChargers.evs key")
            if not isinstance(entry, dict):
                raise ValueError(f"EVChargers.evs[{raw_ev}] must be an object {{charger, capacityWh, socMaxPpm}}")
            charger = parse_address(entry.get("charger"), f"EVChargers.evs[{raw_ev}].charger")
            if ZERO_ADDRESS in (ev, charger) or ev == charger:
                raise ValueError(f"EVChargers.evs[{raw_ev}]: the EV and its charger must be two non-zero accounts")
            capacity = parse_amount(entry.get("capacityWh"), f"EVChargers.evs[{raw_ev}].capacityWh", 10**9)
            soc_max = parse_amount(entry.get("socMaxPpm", PPM), f"EVChargers.evs[{raw_ev}].socMaxPpm", PPM)
            if capacity == 0:
                raise ValueError(f"EVChargers.evs[{raw_ev}].capacityWh must be positive")
            evs[ev] = {"charger": charger, "capacityWh": capacity, "socMaxPpm": soc_max}
        return {"hourSeconds": hour, "evs": evs}

    def write_genesis(self, state: State) -> None:
        super().write_genesis(state)
        HOUR_SECONDS.write(state, self.address, self.params["hourSeconds"])
        for ev, entry in self.params["evs"].items():
            EVS.write(state, self.address, ev, {**entry, "charger": entry["charger"].to_checksum()})

    # -- gas-free reader (PoSOC) ------------------------------------------------------------
    @staticmethod
    def report_at(state: State, address: Address, ev: Address, hour: int) -> Report | None:
        """The charger's report for `ev` in `hour`, with the EV's battery, or None."""
        stored = REPORTS.read(state, address, ev, hour)
        battery = EVS.read(state, address, ev)
        if stored is None or battery is None:
            return None
        return Report(stored["chargedWh"], stored["dischargedWh"], stored["socPpm"], stored["departing"],
                      battery["capacityWh"], battery["socMaxPpm"])

    # -- views ------------------------------------------------------------------------------
    @abi_function("hourSeconds")
    def _hour_seconds(self, ctx: CallContext) -> int:
        return HOUR_SECONDS.get(ctx)

    @abi_function("currentHour")
    def _current_hour(self, ctx: CallContext) -> int:
        return ctx.env.timestamp // HOUR_SECONDS.get(ctx)

    @abi_function("ev")
    def _ev(self, ctx: CallContext, ev: str) -> tuple[str, int, int]:
        entry = EVS.get(ctx, Address.from_hex(ev))
        if entry is None:
            return ZERO_ADDRESS.to_checksum(), 0, 0
        return as_address(entry["charger"]).to_checksum(), entry["capacityWh"], entry["socMaxPpm"]

    @abi_function("report")
    def _report(self, ctx: CallContext, ev: str, hour: int) -> tuple[bool, int, int, int, bool]:
        stored = REPORTS.get(ctx, Address.from_hex(ev), hour)
        if stored is None:
            return False, 0, 0, 0, False
        return True, stored["chargedWh"], stored["dischargedWh"], stored["socPpm"], stored["departing"]

    # -- state changes ----------------------------------------------------------------------
    @abi_function("registerEV")
    def _register_ev(self, ctx: CallContext, ev: str, charger: str, capacity_wh: int, soc_max_ppm: int) -> None:
        """An admin registers (or updates) an EV's battery and charger; reports already posted stay."""
        self.require_admin(ctx, ctx.caller, reason="ev: caller is not an admin")
        account, oracle = Address.from_hex(ev), Address.from_hex(charger)
        if self.role_of(ctx, account) != Role.EV:
            raise Revert("ev: the account does not have the EV role")
        if self.role_of(ctx, oracle) != Role.METER_ORACLE:
            raise Revert("ev: the charger does not have the meter oracle role")
        if not 0 < capacity_wh <= 10**9 or not 0 < soc_max_ppm <= PPM:
            raise Revert("ev: capacity must be 1..10^9 Wh and the SOC limit 1..10^6 ppm")
        EVS.set(ctx, account, {"charger": oracle.to_checksum(), "capacityWh": capacity_wh, "socMaxPpm": soc_max_ppm})
        self.emit(ctx, "EVRegistered", account.to_checksum(), oracle.to_checksum(), capacity_wh, soc_max_ppm)

    @abi_function("postReport")
    def _post(self, ctx: CallContext, ev: str, hour: int, charged_wh: int, discharged_wh: int, soc_ppm: int,
              departing: bool) -> None:
        account = Address.from_hex(ev)
        entry = EVS.get(ctx, account)
        if entry is None:
            raise Revert("ev: not a registered EV")
        if ctx.caller != as_address(entry["charger"]):
            raise Revert("ev: caller is not the EV's charger")
        if hour > ctx.env.timestamp // HOUR_SECONDS.get(ctx):
            raise Revert("ev: hour is in the future")
        if soc_ppm > PPM or charged_wh > entry["capacityWh"] or discharged_wh > entry["capacityWh"]:
            raise Revert("ev: energy above the battery's capacity or SOC above 100 %")
        if REPORTS.get(ctx, account, hour) is not None:
            raise Revert("ev: already reported for this hour")
        REPORTS.set(ctx, account, hour, {"chargedWh": charged_wh, "dischargedWh": discharged_wh,
                                         "socPpm": soc_ppm, "departing": departing})
        self.emit(ctx, "ChargerReport", account.to_checksum(), hour, charged_wh, discharged_wh, soc_ppm, departing)
