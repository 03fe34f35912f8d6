"""Federated averaging in fixed point (thesis eq. 4.19): the rule by which any node checks the
mLAG's global model against the updates the EVs committed to, bit for bit.

A model travels as bytes: RLP [1, fraction bits, [[name, [dim, …]], …], values], where values
are the parameters in the listed order as signed 64-bit little-endian integers, each the float
weight times 2^bits rounded to the nearest. An EV's agent converts its floats once
(`market.economics.federated.to_model`); from then on every step is integer (plain Python
integers: no float library is imported here), so every node computes the same bytes.

FedAvg of N updates with one layout: each parameter is ⌊Σ_n w_n / N⌋ (floor division), with the
same layout and bits. The model's hash on chain is keccak of its encoding.

An update is malformed, and must be left out of an aggregate, if it does not decode, if its
layout or bits differ from the first included update's, or if a value's magnitude is 2^53 or more
(so sums of up to 1,024 updates stay inside int64: 2^10 · (2^53 − 1) < 2^63).
"""
from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import rlp

from vm.codec import MalformedRLP
from vm.codec import decode as rlp_decode
from vm.crypto import keccak256

VERSION = 1
DEFAULT_BITS = 24
MAX_BITS = 48
MAX_MAGNITUDE = 2**53 - 1
"""The largest |value|: 1,024 of them sum inside int64."""
MAX_UPDATES = 1024
MAX_TENSORS = 64
MAX_PARAMETERS = 1 << 20

Layout = tuple[tuple[str, tuple[int, ...]], ...]


class ModelError(ValueError):
    """Bytes that are not a well-formed model, or updates that cannot be averaged together."""


@dataclass(frozen=True)
class Model:
    layout: Layout
    bits: int
    values: tuple[int, ...]
    """The parameters flattened in layout order, each |value| ≤ MAX_MAGNITUDE (int64 on the wire)."""

    def encode(self) -> bytes:
        shapes = [[name.encode(), list(dims)] for name, dims in self.layout]
        return rlp.encode([VERSION, self.bits, shapes, struct.pack(f"<{len(self.values)}q", *self.values)])

    @property
    def hash(self) -> bytes:
        return keccak256(self.encode())


def model_hash(blob: bytes) -> bytes:
    return keccak256(blob)


def decode(blob: bytes) -> Model:
    """Parse and check a model's bytes; ModelError says what is wrong."""
    if not isinstance(blob, bytes):
        raise ModelError("a model is bytes")
    try:  # bounded depth: pyrlp's own decoder recurses into any nesting and overflows the stack
        items = rlp_decode(blob, max_depth=4)
    except MalformedRLP as error:
        raise ModelError(f"not RLP: {error}") from None
    if not isinstance(items, list) or len(items) != 4 or not isinstance(items[2], list) \
            or not isinstance(items[3], bytes):
        raise ModelError("a model is [version, bits, layout, values]")
    version, bits = (_uint(item, name) for item, name in ((items[0], "version"), (items[1], "bits")))
    if version != VERSION:
        raise ModelError(f"unknown model version {version}")
    if not 0 <= bits <= MAX_BITS:
        raise ModelError(f"fraction bits must be 0..{MAX_BITS}")
    if not 1 <= len(items[2]) <= MAX_TENSORS:
        raise ModelError(f"a model has 1..{MAX_TENSORS} tensors")
    layout, count = [], 0
    for entry in items[2]:
        if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], bytes) \
                or not isinstance(entry[1], list) or len(entry[1]) > 8:
            raise ModelError("a tensor is [name, [dims]] with at most 8 dims")
        try:
            name = entry[0].decode("ascii")
        except UnicodeDecodeError:
            raise ModelError("a tensor's name is ASCII") from None
        dims = tuple(_uint(d, "dim") for d in entry[1])
        if 0 in dims:
            raise ModelError("a tensor's dims are at least 1")
        size = math.prod(dims)
        count += size
        if count > MAX_PARAMETERS:
            raise ModelError(f"a model has at most {MAX_PARAMETERS} parameters")
        layout.append((name, dims))
    if len({name for name, _ in layout}) != len(layout) or not all(0 < len(n) <= 64 for n, _ in layout):
        raise ModelError("tensor names are 1..64 characters and distinct")
    if len(items[3]) != 8 * count:
        raise ModelError(f"the layout holds {count} values, the data {len(items[3])} bytes")
    values = struct.unpack(f"<{count}q", items[3])
    if values and (max(values) > MAX_MAGNITUDE or min(values) < -MAX_MAGNITUDE):
        raise ModelError("a value's magnitude is 2^53 or more")
    model = Model(tuple(layout), bits, values)
    if model.encode() != blob:
        raise ModelError("not the canonical encoding")
    return model


def fedavg(updates: Sequence[Model]) -> Model:
    """w^G = ⌊(1/N) Σ_n w^n⌋ (eq. 4.19) over updates that share one layout."""
    if not 1 <= len(updates) <= MAX_UPDATES:
        raise ModelError(f"an aggregate averages 1..{MAX_UPDATES} updates")
    first = updates[0]
    for update in updates[1:]:
        if update.layout != first.layout or update.bits != first.bits:
            raise ModelError("the updates do not share one layout")
    # Python integers are exact; |value| ≤ 2^53 − 1 and N ≤ 2^10 also keep the sum inside int64
    n = len(updates)
    return Model(first.layout, first.bits, tuple(sum(column) // n for column in zip(*(u.values for u in updates))))


def aggregate_hash(blobs: Sequence[bytes]) -> bytes:
    """The hash an honest mLAG posts for these updates; ModelError if one of them is malformed."""
    return fedavg([decode(blob) for blob in blobs]).hash


def _uint(item, name: str) -> int:
    if not isinstance(item, bytes) or len(item) > 8 or item[:1] == b"\x00":
        raise ModelError(f"{name} must be a canonical unsigned integer")
    return int.from_bytes(item, "big")


def includable(committed: Mapping[int, tuple[bytes, int]], blobs: Mapping[int, bytes | None],
               max_bytes: int) -> tuple[list[int], list[Model]]:
    """The exclusion rule an honest mLAG follows. `committed` is EV index → (hash, size) of the
    round's commitments, `blobs` what it could fetch for them. By index, an update is included if
    its bytes hash to the commitment, decode, share the layout and bits of the first included one,
    and keep the committed sizes included within `max_bytes` (the engine's bound, so one
    transaction can challenge the aggregate). Returns the indices and the decoded models; naming a
    malformed update would void the aggregate."""
    included: list[int] = []
    models: list[Model] = []
    total = 0
    for index in sorted(committed):
        model_hash, size = committed[index]
        blob = blobs.get(index)
        if blob is None or keccak256(blob) != model_hash or total + size > max_bytes:
            continue
        try:
            model = decode(blob)
        except ModelError:
            continue
        if models and (model.layout != models[0].layout or model.bits != models[0].bits):
            continue
        included.append(index)
        models.append(model)
        total += size
    return included, models
