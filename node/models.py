"""The node's store of federated-learning models, content-addressed by keccak of their bytes.

The chain keeps only a model's hash (PoSOC's COMMIT and AGGREGATE); the bytes live here, in
`<datadir>/models/<hash hex>`, one file each, written to a temporary name and renamed, so a crash
leaves either the whole model or none. Only well-formed models are kept (`fedavg.decode`), each at
most MAX_MODEL_BYTES (the engine's bound on a committed update), all of them together at most
`max_bytes` (256 MiB by default): past it the oldest are evicted, by the order they were stored
(file modification time, then name, at start). A file whose bytes no longer hash to its name is
deleted when read. Safe to call from several threads."""
from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from consensus.posoc.engine import MAX_MODEL_BYTES
from consensus.rules.fedavg import ModelError, decode
from vm.crypto import keccak256

log = logging.getLogger("gridnode.models")

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""All stored models together: about 34,000 actor-critic updates of 7,806 bytes."""


class ModelStore:
    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes < MAX_MODEL_BYTES:
            raise ValueError(f"a model store holds at least one model of {MAX_MODEL_BYTES} bytes")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sizes: OrderedDict[bytes, int] = OrderedDict()
        """Hash → size, oldest first."""
        self.total = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        found = []
        for path in self.directory.iterdir():
            if path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write the process did not finish
                continue
            try:
                key = bytes.fromhex(path.name)
            except ValueError:
                continue
            if len(key) == 32:
                stat = path.stat()
                found.append((stat.st_mtime_ns, path.name, key, stat.st_size))
        for _, _, key, size in sorted(found):
            self._sizes[key] = size
            self.total += size
        with self._lock:
            self._evict(0)

    def put(self, blob: bytes) -> bytes:
        """Store a model; its hash. ModelError if it is too large or not a well-formed model."""
        if len(blob) > MAX_MODEL_BYTES:
            raise ModelError(f"a model is at most {MAX_MODEL_BYTES} bytes, not {len(blob)}")
        decode(blob)
        key = keccak256(blob)
        with self._lock:
            if key in self._sizes:
                self._sizes.move_to_end(key)
                return key
            self._evict(len(blob))
            path = self._path(key)
            temporary = path.with_name(path.name + ".tmp")
            with open(temporary, "wb") as handle:
                handle.write(blob)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
            self._sizes[key] = len(blob)
            self.total += len(blob)
        return key

    def get(self, key: bytes) -> bytes | None:
        """The model whose keccak is `key`, or None."""
        with self._lock:
            if key not in self._sizes:
                return None
            try:
                blob = self._path(key).read_bytes()
            except OSError:
                blob = None
            if blob is None or keccak256(blob) != key:
                log.warning("dropped a damaged model file", extra={"hash": "0x" + key.hex()})
                self._forget(key)
                return None
            return blob

    def __contains__(self, key: bytes) -> bool:
        with self._lock:
            return key in self._sizes

    def __len__(self) -> int:
        with self._lock:
            return len(self._sizes)

    def _evict(self, room: int) -> None:
        """Drop the oldest models until `room` more bytes fit (lock held)."""
        while self._sizes and self.total + room > self.max_bytes:
            self._forget(next(iter(self._sizes)))

    def _forget(self, key: bytes) -> None:
        self.total -= self._sizes.pop(key)
        self._path(key).unlink(missing_ok=True)

    def _path(self, key: bytes) -> Path:
        return self.directory / key.hex()
