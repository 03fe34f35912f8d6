"""The one place that maps a genesis `consensus.engine` name to an engine."""
from __future__ import annotations

from consensus.engine import Engine
from consensus.poa import PoAConfig, ProofOfAuthority
from consensus.pow import PoWConfig, ProofOfWork

ENGINES = {
    "poa": lambda params, block_time: ProofOfAuthority(PoAConfig.from_params(params, block_time)),
    "pow": lambda params, block_time: ProofOfWork(PoWConfig.from_params(params, block_time)),
}


def create_engine(name: str, params: dict, block_time: int) -> Engine:
    try:
        make = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown consensus engine {name!r}; available: {', '.join(sorted(ENGINES))}") from None
    return make(params, block_time)
