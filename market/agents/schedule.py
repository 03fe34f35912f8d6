"""Paper 002's hourly batches (§II-A): each hour the buyers negotiate, for 50 minutes, the
energy they will need in the next hour; the last 10 minutes confirm what was agreed on chain.

Time is the chain's: the latest block's timestamp (what offers' expiries are measured in),
multiplied by a time scale, so that with `time_scale=120` an hour of the market passes in 30
seconds of block time. Integer arithmetic only, so every agent cuts hours at the same seconds."""
from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600
MINUTE = 60
NEGOTIATE = "negotiate"
CONFIRM = "confirm"


@dataclass(frozen=True)
class HourlyBatch:
    time_scale: int = 1
    """Market seconds per second of block time (1: real time)."""
    negotiate_minutes: int = 50
    """Minutes of each hour spent negotiating; the rest of the hour confirms."""

    def __post_init__(self) -> None:
        if self.time_scale < 1:
            raise ValueError("the time scale is a whole number of market seconds per second, at least 1")
        if not 0 < self.negotiate_minutes < 60:
            raise ValueError("the negotiation takes between 1 and 59 minutes of the hour")

    def hour_of(self, timestamp: int) -> int:
        """The market hour a block timestamp falls in."""
        return timestamp * self.time_scale // HOUR

    def minute_of(self, timestamp: int) -> int:
        """Market minutes since the start of the hour (0..59)."""
        return timestamp * self.time_scale % HOUR // MINUTE

    def phase(self, timestamp: int) -> str:
        return NEGOTIATE if self.minute_of(timestamp) < self.negotiate_minutes else CONFIRM

    def hour_start(self, hour: int) -> int:
        """The first block timestamp of market hour `hour`."""
        return -(-hour * HOUR // self.time_scale)

    def delivery_expiry(self, hour: int) -> int:
        """Expiry of an offer negotiated in `hour`: the last second of the next hour, in which
        the energy is delivered and metered."""
        return self.hour_start(hour + 2) - 1
