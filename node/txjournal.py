"""Transactions this node accepted over RPC survive a restart, as go-ethereum's
transactions.rlp does: each is appended as it is admitted, the file is rewritten
with what is still pending from time to time, and it is replayed into the
mempool at start. Records are length-prefixed, so a process killed in the
middle of an append leaves at worst a torn last record, which is ignored."""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("gridnode.txpool")

MAX_RECORD = 128 * 1024


class TxJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None

    def load(self) -> list[bytes]:
        """Every whole record in the journal, oldest first."""
        if not self.path.exists():
            return []
        data = self.path.read_bytes()
        records, offset = [], 0
        while offset + 4 <= len(data):
            size = int.from_bytes(data[offset:offset + 4], "big")
            if size > MAX_RECORD or offset + 4 + size > len(data):
                log.warning("ignoring a torn or corrupt tail of the transaction journal",
                            extra={"offset": offset, "bytes": len(data) - offset})
                break
            records.append(data[offset + 4:offset + 4 + size])
            offset += 4 + size
        return records

    def append(self, raw: bytes) -> None:
        if self._file is None:
            self._file = open(self.path, "ab")
        self._file.write(len(raw).to_bytes(4, "big") + raw)
        self._file.flush()

    def rewrite(self, raws: list[bytes]) -> None:
        """Replace the journal with `raws` atomically (write aside, then rename)."""
        self.close()
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            for raw in raws:
                handle.write(len(raw).to_bytes(4, "big") + raw)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
