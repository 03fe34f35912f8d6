"""Where a meter agent's readings come from: a synthetic profile or a CSV file.

A reading is what the meter saw in one settlement slot, in whole Wh: generation (PV),
consumption, and the battery's state of charge at the end of the slot."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

SOLAR_PERCENT = (0, 0, 0, 0, 0, 2, 10, 25, 45, 65, 82, 94, 100, 96, 85, 68, 48, 27, 10, 2, 0, 0, 0, 0)
"""A clear day's PV output by hour of day, in percent of the peak (integers: a meter reports Wh)."""


@dataclass(frozen=True)
class SlotReading:
    generation_wh: int
    consumption_wh: int
    battery_wh: int


class ReadingsExhausted(Exception):
    """The source has no reading for this slot (a CSV file ran out)."""


@dataclass(frozen=True)
class SyntheticReadings:
    """The same consumption and battery every slot; generation constant, or following
    `SOLAR_PERCENT` by the market hour of day when `solar` is set (then `generation_wh` is
    the peak)."""

    generation_wh: int = 0
    consumption_wh: int = 0
    battery_wh: int = 0
    solar: bool = False

    def __post_init__(self) -> None:
        if min(self.generation_wh, self.consumption_wh, self.battery_wh) < 0:
            raise ValueError("readings are non-negative Wh")

    def reading(self, index: int, market_hour: int) -> SlotReading:
        generation = self.generation_wh * SOLAR_PERCENT[market_hour % 24] // 100 if self.solar \
            else self.generation_wh
        return SlotReading(generation, self.consumption_wh, self.battery_wh)


class CsvReadings:
    """One row per slot, in order: a header with `generation_wh`, `consumption_wh` and
    optionally `battery_wh` (0 if absent), then whole Wh per row. The agent posts row i for
    the i-th slot it reports."""

    COLUMNS = ("generation_wh", "consumption_wh")

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        with open(self.path, newline="") as handle:
            table = csv.DictReader(handle)
            missing = [c for c in self.COLUMNS if c not in (table.fieldnames or ())]
            if missing:
                raise ValueError(f"{self.path}: missing column(s) {', '.join(missing)} "
                                 f"(header must name generation_wh, consumption_wh[, battery_wh])")
            self.rows = [self._row(line, number) for number, line in enumerate(table, start=2)]
        if not self.rows:
            raise ValueError(f"{self.path}: no readings")

    def _row(self, line: dict, number: int) -> SlotReading:
        values = []
        for column in (*self.COLUMNS, "battery_wh"):
            text = (line.get(column) or "0").strip()
            if not text.isdigit():
                raise ValueError(f"{self.path}:{number}: {column} must be a whole number of Wh, got {text!r}")
            values.append(int(text))
        return SlotReading(*values)

    def reading(self, index: int, market_hour: int) -> SlotReading:
        if index >= len(self.rows):
            raise ReadingsExhausted(f"{self.path} has {len(self.rows)} readings")
        return self.rows[index]
