"""The node's wall clock for consensus timing: when a block may be sealed, what timestamp it
carries, and how far in the future a peer's block may be. One object per node, so the fault
harness can skew one node's clock (`harness_setClockOffset`) without touching the system's."""
from __future__ import annotations

import time


class Clock:
    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        """Seconds added to the system clock; 0 except when the harness skews this node."""

    def __call__(self) -> float:
        return time.time() + self.offset
