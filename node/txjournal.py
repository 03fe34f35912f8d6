"""Transactions this node accepted over RPC survive a restart, as go-ethereum's
transactions.rlp does: each is appended as it is admitted, the file is rewritten
with what is still pending from time to time, and it is replayed into the
mempool at start. Records are length-prefixed, so a process killed in the
middle of an append leaves at worst a torn last record, which is ignored. An append
that fails (a full disk) is cut back off and raised: the caller then refuses the
transaction, so the journal never holds one its client was told was not taken."""
from __future__ import annotations

import errno
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
            self._file = open(self.path, "ab", buffering=0)  # unbuffered: a failed write is not retried later
        record = len(raw).to_bytes(4, "big") + raw
        end = os.fstat(self._file.fileno()).st_size
        try:
            if self._file.write(record) != len(record):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            os.ftruncate(self._file.fileno(), end)
            raise

    def rewrite(self, raws: list[bytes]) -> None:
        """Replace the journal with `raws` atomically (write aside, then rename). If that fails
        (a full disk), the old journal stays as it was and the error is raised."""
        self.close()
        temporary = self.path.with_suffix(".tmp")
        try:
            with open(temporary, "wb") as handle:
                for raw in raws:
                    handle.write(len(raw).to_bytes(4, "big") + raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except OSError:
            temporary.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
