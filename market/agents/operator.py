"""The microgrid operator agent (paper 002's MGO): it keeps the microgrid balanced and verifies
new members.

Imbalance: when the prosumers' offers do not cover the buyers' demand, the operator supplies
the rest from the utility network at the grid price (fiat base units per kWh; default 30 =
0.30 GUSD/kWh). Late in each hour's negotiation (from
`offer_after_minute`, default minute 40), once the prosumers have traded among themselves, it
mints `capacity_wh` energy tokens (as an EnergyToken issuer: the energy it can import) and
offers them at the grid price; buyers whose demand is still open take it for what is left. After the offer's
expiry it takes back and burns what no one bought, so only imported energy stays minted; what
was bought is the imbalance it covered (reported as `imbalance_covered`).

Members: it reads admission requests from an inbox file, one JSON object a line
(`{"address": "0x…", "role": "prosumer", "name": "house-21", "oracle": "0x…"}`, `oracle`
optional), checks each and registers it (Registry.register; with an oracle, the oracle with the
meter-oracle role and Meters.registerMeter). The operator's key must be a Registry admin."""
from __future__ import annotations

import json
from pathlib import Path

from eth_utils import is_address, to_checksum_address

from market.agents.book import Offer, SellingAgent
from market.agents.client import AgentError, MarketClient, Reporter
from market.agents.schedule import NEGOTIATE, HourlyBatch
from vm.native.roles import Role

MAX_MEMBER_NAME_BYTES = 64
DEFAULT_GRID_PRICE_PER_KWH = 30
"""0.30 GUSD/kWh (fiat base units per kWh): a retail utility tariff."""


class OperatorAgent(SellingAgent):
    kind = "operator"

    def __init__(self, client: MarketClient, schedule: HourlyBatch, report: Reporter,
                 grid_price_per_kwh: int = DEFAULT_GRID_PRICE_PER_KWH, capacity_wh: int = 0,
                 inbox: Path | None = None, offer_after_minute: int = 40) -> None:
        super().__init__(client, schedule, report)
        if not 0 <= offer_after_minute < schedule.negotiate_minutes:
            raise ValueError(f"offer_after_minute must fall in the negotiation (0..{schedule.negotiate_minutes - 1})")
        if capacity_wh and grid_price_per_kwh < 1:
            raise ValueError("the grid price is at least 1 fiat base unit per kWh")
        if capacity_wh < 0:
            raise ValueError("the capacity is a non-negative number of Wh")
        if not client.view("Registry", "isAdmin", client.address):
            raise AgentError(f"{client.address} is not a Registry admin; the operator registers members")
        self.grid_price = grid_price_per_kwh
        self.capacity_wh = capacity_wh
        self.inbox = Path(inbox) if inbox else None
        self.inbox_lines_done = 0
        self.offer_after_minute = offer_after_minute
        self.offered_hours: set[int] = set()

    def step(self, timestamp: int) -> None:
        self.admit_members()
        hour = self.schedule.hour_of(timestamp)
        phase = self.schedule.phase(timestamp)
        if (self.capacity_wh and phase == NEGOTIATE and hour not in self.offered_hours
                and self.schedule.minute_of(timestamp) >= self.offer_after_minute):
            self.offer_grid_energy(hour)
        self.follow_allocations()
        self.settle(timestamp, confirm_phase=phase != NEGOTIATE)

    # -- imbalance -------------------------------------------------------------
    def offer_grid_energy(self, hour: int) -> None:
        me = self.client.address
        if not self.client.view("EnergyToken", "isIssuer", me):
            self.client.send("EnergyToken", "addIssuer", me)
            self.report("issuer_added", token="EnergyToken")
        balance = self.client.view("EnergyToken", "balanceOf", me)
        if balance < self.capacity_wh:
            self.client.send("EnergyToken", "mint", me, self.capacity_wh - balance)
            self.report("grid_energy_minted", wh=self.capacity_wh - balance)
        self.publish(self.capacity_wh, self.grid_price, self.schedule.delivery_expiry(hour))
        self.offered_hours.add(hour)

    def on_returned(self, offer: Offer, wh: int) -> None:
        if wh:
            self.client.send("EnergyToken", "burn", wh)
        self.report("imbalance_covered", offerId=offer.offer_id, injectedWh=offer.amount_wh - wh, burnedWh=wh,
                    pricePerKWh=offer.price_per_kwh)

    # -- admission ---------------------------------------------------------------
    def admit_members(self) -> None:
        if self.inbox is None or not self.inbox.exists():
            return
        lines = self.inbox.read_text().split("\n")[:-1]  # complete lines only; the last may be half written
        for number in range(self.inbox_lines_done, len(lines)):
            if lines[number].strip():
                try:
                    self.admit(self.parse_request(lines[number]))
                except (ValueError, AgentError) as exc:
                    self.report("member_refused", line=number + 1, reason=str(exc))
            self.inbox_lines_done = number + 1  # an unreachable node raises past this: retried next step

    @staticmethod
    def parse_request(line: str) -> dict:
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(request, dict):
            raise ValueError("a request is a JSON object")
        unknown = set(request) - {"address", "role", "name", "oracle"}
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}")
        for field in ("address", "role", "name"):
            if not isinstance(request.get(field), str):
                raise ValueError(f"{field} is required (a string)")
        addresses = [request["address"]] + ([request["oracle"]] if "oracle" in request else [])
        for address in addresses:
            if not isinstance(address, str) or not is_address(address):
                raise ValueError(f"{address!r} is not an address")
        role = Role.parse(request["role"])
        if role is Role.METER_ORACLE:
            raise ValueError("meter oracles are admitted with the member they meter (the oracle field)")
        if not 0 < len(request["name"].encode()) <= MAX_MEMBER_NAME_BYTES - len("-meter"):
            raise ValueError(f"name must be 1..{MAX_MEMBER_NAME_BYTES - len('-meter')} bytes")
        return {"address": to_checksum_address(request["address"]), "role": role, "name": request["name"],
                "oracle": to_checksum_address(request["oracle"]) if "oracle" in request else None}

    def admit(self, request: dict) -> None:
        account, oracle = request["address"], request["oracle"]
        if self.client.view("Registry", "isRegistered", account):
            raise AgentError(f"{account} is already registered")
        if oracle is not None and (oracle == account or self.client.view("Registry", "isRegistered", oracle)):
            raise AgentError(f"meter oracle {oracle} is the member itself or already registered")
        self.client.send("Registry", "register", account, int(request["role"]), request["name"])
        if oracle is not None:
            self.client.send("Registry", "register", oracle, int(Role.METER_ORACLE), request["name"] + "-meter")
            self.client.send("Meters", "registerMeter", account, oracle)
        self.report("member_admitted", address=account, role=request["role"].name.lower(), name=request["name"],
                    oracle=oracle)
