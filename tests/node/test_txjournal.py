"""The transaction journal: a kill in the middle of an append costs at most that record."""
from __future__ import annotations

from node.txjournal import TxJournal


def test_torn_tail_is_ignored_and_rewrite_replaces_everything(tmp_path):
    journal = TxJournal(tmp_path / "txpool.journal")
    for raw in (b"\x02first", b"\x02second", b"\x02third"):
        journal.append(raw)
    journal.close()
    data = journal.path.read_bytes()
    journal.path.write_bytes(data[:-3])  # the process died mid-write
    assert journal.load() == [b"\x02first", b"\x02second"]
    journal.rewrite([b"\x02second"])
    assert journal.load() == [b"\x02second"]
    journal.path.write_bytes(b"\xff\xff\xff\xff garbage")  # a corrupt length is not trusted
    assert journal.load() == []
