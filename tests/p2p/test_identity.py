"""The node key: created once with mode 0600, stable across restarts, readable without a host."""
from __future__ import annotations

import stat

import pytest

from node.p2p.identity import (
    IdentityError,
    load_identity,
    load_or_create_identity,
    node_key_path,
)


def test_the_key_is_created_private_and_reused(tmp_path):
    first = load_or_create_identity(tmp_path / "data")
    path = node_key_path(tmp_path / "data")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.peer_id.startswith("12D3KooW")  # ed25519, as libp2p names them
    again = load_or_create_identity(tmp_path / "data")
    assert again.peer_id == first.peer_id
    assert load_identity(tmp_path / "data").peer_id == first.peer_id
    assert [entry.name for entry in path.parent.iterdir()] == ["node.key"]  # no temporary left behind


def test_distinct_data_dirs_get_distinct_keys(tmp_path):
    assert load_or_create_identity(tmp_path / "a").peer_id != load_or_create_identity(tmp_path / "b").peer_id


def test_a_corrupt_key_file_is_an_error_not_a_new_identity(tmp_path):
    path = node_key_path(tmp_path)
    path.write_bytes(b"not a key")
    with pytest.raises(IdentityError, match="not a libp2p private key"):
        load_or_create_identity(tmp_path)
    assert path.read_bytes() == b"not a key"
