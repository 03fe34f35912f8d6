"""The state root commits to exactly the set of (key, value) pairs, however they got there."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from vm.merkle import EMPTY, StateTree, list_root

keys = st.binary(min_size=1, max_size=40)
values = st.binary(min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=60), st.randoms())
def test_root_depends_only_on_contents(items, rng):
    one_batch = StateTree.from_items(items.items())
    shuffled = list(items.items())
    rng.shuffle(shuffled)
    incremental = StateTree()
    for start in range(0, len(shuffled), 7):
        incremental.apply(incremental.prepare(dict(shuffled[start:start + 7])))
    assert incremental.root == one_batch.root != EMPTY


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(keys, values, min_size=2, max_size=40))
def test_any_change_moves_the_root_and_undo_restores_it(items):
    tree = StateTree.from_items(items.items())
    before = tree.root
    key = sorted(items)[0]
    update = tree.prepare({key: items[key] + b"!"})
    assert update.root != before and tree.root == before, "prepare must not touch the tree"
    tree.apply(update)
    tree.apply(tree.prepare({key: items[key]}))
    assert tree.root == before
    tree.apply(tree.prepare({k: None for k in items}))
    assert tree.root == EMPTY


def test_list_root_is_order_sensitive():
    assert list_root([b"a", b"b"]) != list_root([b"b", b"a"])
    assert list_root([b"a", b"b", b"c"]) != list_root([b"a", b"b"])
    assert list_root([]) != list_root([b""])
