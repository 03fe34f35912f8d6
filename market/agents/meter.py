"""The meter oracle (paper 002's SMA/PVA/BSA): each settlement slot it posts its prosumer's
reading to Meters, then mints the prosumer's energy tokens against the generation it has
reported and not yet minted (EnergyToken.mintWatts; the tokens go to the prosumer).

The key is the oracle's own (role meter oracle, registered for the prosumer in Meters);
slots are the chain's (`Meters.currentSlot()`, block timestamp // slotSeconds)."""
from __future__ import annotations

from market.agents.client import Agent, AgentError, MarketClient, Reporter
from market.agents.readings import ReadingsExhausted
from market.agents.schedule import HourlyBatch


class MeterAgent(Agent):
    kind = "meter"

    def __init__(self, client: MarketClient, schedule: HourlyBatch, report: Reporter, prosumer: str,
                 source, mint: bool = True) -> None:
        super().__init__(client, schedule, report)
        self.prosumer = client.w3.to_checksum_address(prosumer)
        self.source = source
        self.mint = mint
        self.posted = 0
        oracle = client.view("Meters", "oracleOf", self.prosumer)
        if oracle != client.address:
            raise AgentError(f"{client.address} is not the meter oracle of {self.prosumer} "
                             f"(Meters.oracleOf says {oracle})")
        self.last_slot: int | None = None

    def step(self, timestamp: int) -> None:
        slot = self.client.view("Meters", "currentSlot")
        if slot != self.last_slot:
            posted, *_ = self.client.view("Meters", "reading", self.prosumer, slot)
            if posted:  # another process of this meter, or a manual post, was first: one reading a slot
                self.report("reading_exists", prosumer=self.prosumer, slot=slot)
            else:
                try:
                    reading = self.source.reading(self.posted, self.schedule.hour_of(timestamp))
                except ReadingsExhausted as exc:
                    self.report("readings_exhausted", reason=str(exc))
                    self.done = True
                    return
                self.client.send("Meters", "postReading", self.prosumer, slot, reading.generation_wh,
                                 reading.consumption_wh, reading.battery_wh)
                self.posted += 1
                self.report("reading_posted", prosumer=self.prosumer, slot=slot,
                            generationWh=reading.generation_wh, consumptionWh=reading.consumption_wh,
                            batteryWh=reading.battery_wh)
            self.last_slot = slot
        if self.mint:
            mintable = self.client.view("EnergyToken", "mintable", self.prosumer)
            if mintable:
                self.client.send("EnergyToken", "mintWatts", self.prosumer, mintable)
                self.report("watts_minted", prosumer=self.prosumer, wh=mintable)
