"""The one place that maps a genesis `consensus.engine` name to an engine."""
from __future__ import annotations

from consensus.engine import Engine, EngineServices
from consensus.poa import PoAConfig, ProofOfAuthority
from consensus.pow import PoWConfig, ProofOfWork

def _poeg(params: dict, block_time: int, services: EngineServices) -> Engine:
    from consensus.poeg.engine import PoEGConfig, ProofOfEnergyGeneration  # loads numpy: only on PoEG chains
    return ProofOfEnergyGeneration(PoEGConfig.from_params(params, block_time), services)


def _posoc(params: dict, block_time: int, services: EngineServices) -> Engine:
    from consensus.posoc.engine import PoSOCConfig, ProofOfStateOfCharge
    return ProofOfStateOfCharge(PoSOCConfig.from_params(params, block_time), services)


ENGINES = {
    "poa": lambda params, block_time, services: ProofOfAuthority(PoAConfig.from_params(params, block_time)),
    "pow": lambda params, block_time, services: ProofOfWork(PoWConfig.from_params(params, block_time)),
    "poeg": _poeg,
    "posoc": _posoc,
}


def create_engine(name: str, params: dict, block_time: int, services: EngineServices = EngineServices()) -> Engine:
    """The engine a genesis names; `services` are what score-based engines read from above them."""
    try:
        make = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown consensus engine {name!r}; available: {', '.join(sorted(ENGINES))}") from None
    return make(params, block_time, services)
