"""Chain constants that several layers share, each defined once here and imported where used."""
from __future__ import annotations

ELECOIN_DECIMALS = 18
"""Elecoin, the native currency, has 18 decimals, as ether does, so wallets show it unchanged."""
ELECOIN = 10**ELECOIN_DECIMALS
"""Base units (wei) in one elecoin."""

HISTORY_BLOCKS = 1024
"""How far back the chain can reach: the deepest reorg a node accepts (undo logs make any depth
possible), and likewise the oldest state and the most blocks of fee history served over RPC.
go-ethereum's path-based full node serves the state of its last 128 blocks, Besu's Bonsai 512."""
