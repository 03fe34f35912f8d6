"""Where the genesis puts each market contract unless it says otherwise: "grid" ‖ n,
beside the system contracts (Registry ‖ 01, Signers ‖ 02)."""
from __future__ import annotations

from vm.types import Address


def _grid(n: int) -> Address:
    return Address(b"grid" + n.to_bytes(16, "big"))


FIAT_TOKEN = _grid(0x10)
ENERGY_TOKEN = _grid(0x11)
METERS = _grid(0x12)
EXCHANGE = _grid(0x13)
ETSC = _grid(0x14)
OFFERS = _grid(0x15)
EV_CHARGERS = _grid(0x18)
