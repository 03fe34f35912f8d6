"""Federated learning's models over JSON-RPC: put a model in the node's store, get one by hash
(from peers if it is not here), and check a round's aggregate bit for bit.

A fetch from peers waits on the node's loop (RPC methods are synchronous), so it is bounded by
FETCH_SECONDS; a model that is already stored costs a file read."""
from __future__ import annotations

import concurrent.futures

from consensus.rules.fedavg import ModelError
from node.aggregate_check import FetchModels, NoAggregate, check_round, gather, included_updates, keep
from node.chain import Chain
from node.models import ModelStore
from node.rpc import params
from node.rpc.errors import invalid_params

FETCH_SECONDS = 2.0
"""How long one call waits for peers: grid_getModel and grid_checkAggregate hold the node's loop that
long at most when a model is not stored here."""


class ModelApi:
    def __init__(self, chain: Chain, store: ModelStore, fetch: FetchModels | None) -> None:
        self.chain, self.store, self.fetch = chain, store, fetch

    def grid_putModel(self, data) -> str:
        """Store a model (`consensus.rules.fedavg`'s encoding, at most 120,000 bytes); its keccak hash."""
        blob = params.data(data, "model")
        try:
            return "0x" + self.store.put(blob).hex()
        except ModelError as error:
            raise invalid_params(f"model: {error}") from None

    def grid_getModel(self, model_hash) -> str | None:
        """The model with this keccak hash, from the store or else from peers; null if nobody has it."""
        key = bytes(params.hash32(model_hash, "hash"))
        blob = self.store.get(key)
        if blob is None:
            blob = self._fetch([key]).get(key)
            if blob is not None:
                keep(self.store, {key: blob})
        return None if blob is None else "0x" + blob.hex()

    def grid_checkAggregate(self, round_) -> dict:
        """Round `round_`'s aggregate against FedAvg of the updates it includes (fetched from peers
        where not stored): {round, hash, included, computedHash, match, missing, reason, voided};
        match is null while an included update is missing."""
        number = round_ if isinstance(round_, int) and not isinstance(round_, bool) and round_ >= 0 else \
            params.quantity(round_, "round", 64)
        if number >= 2**64:
            raise invalid_params("round: at most 64 bits")
        try:
            record, hashes = included_updates(self.chain.engine, self.chain.state(), number)
        except NoAggregate as error:
            raise invalid_params(str(error)) from None
        blobs, wanted = gather(self.store, hashes)
        fetched = self._fetch(wanted)
        keep(self.store, fetched)
        return check_round(record, hashes, {**blobs, **fetched})

    def _fetch(self, hashes: list[bytes]) -> dict[bytes, bytes]:
        if not hashes or self.fetch is None:
            return {}
        try:
            return self.fetch(hashes, FETCH_SECONDS).result(FETCH_SECONDS + 1)
        except concurrent.futures.TimeoutError:
            return {}
