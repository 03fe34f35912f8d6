"""harness_ methods: the fault harness's hands inside a node (`gridnode testnet`), served only by
a node started with `--harness` on a test chain (cli/start.py), so no production node has them."""
from __future__ import annotations

from node.byzantine import MODES, Misbehaviour
from node.clock import Clock
from node.rpc.errors import invalid_params

MAX_CLOCK_OFFSET = 3_600
"""Seconds either way: a larger skew tests nothing a smaller one does not."""


class HarnessApi:
    def __init__(self, clock: Clock, misbehaviour: Misbehaviour) -> None:
        self.clock, self.misbehaviour = clock, misbehaviour

    def harness_setClockOffset(self, seconds) -> float:
        """Skew this node's consensus clock by `seconds` (0 puts it right); returns the offset."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or abs(seconds) > MAX_CLOCK_OFFSET:
            raise invalid_params(f"seconds must be a number within ±{MAX_CLOCK_OFFSET}")
        self.clock.offset = float(seconds)
        return self.clock.offset

    def harness_setByzantine(self, mode) -> str | None:
        """Switch a byzantine mode on (one of node/byzantine.py's MODES), or off with null."""
        if mode is not None and mode not in MODES:
            raise invalid_params(f"mode must be null or one of {', '.join(MODES)}")
        self.misbehaviour.set(mode)
        return mode

    def harness_status(self) -> dict:
        return {"clockOffset": self.clock.offset, "byzantine": self.misbehaviour.mode,
                "sent": dict(self.misbehaviour.counts)}
