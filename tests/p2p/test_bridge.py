"""The bridge: port calls run on the asyncio loop's thread and never block trio;
calls from other threads reach the trio thread."""
from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from node.p2p.bridge import Bridge, NetworkStopped


@pytest.fixture
def loop_thread():
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="node-loop", daemon=True)
    thread.start()
    yield loop, thread
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def test_calls_run_on_the_loop_thread_and_return_or_raise_there(loop_thread):
    loop, thread = loop_thread
    bridge = Bridge(loop)

    def where(value):
        return threading.current_thread(), value

    def fails():
        raise KeyError("from the node")

    async def main():
        bridge.attach()
        ran_on, value = await bridge.call(where, 41)
        assert ran_on is thread and value == 41
        with pytest.raises(KeyError, match="from the node"):
            await bridge.call(fails)

    trio.run(main)


def test_trio_keeps_running_while_the_loop_is_busy(loop_thread):
    loop, _ = loop_thread
    bridge = Bridge(loop)
    release = threading.Event()
    ticks = []

    async def main():
        bridge.attach()
        async with trio.open_nursery() as nursery:
            async def ticker():
                for _ in range(5):
                    ticks.append(trio.current_time())
                    await trio.sleep(0.01)
                release.set()
            nursery.start_soon(ticker)
            assert await bridge.call(lambda: release.wait(10)) is True  # the loop blocks until trio has ticked

    trio.run(main)
    assert len(ticks) == 5


def test_a_cancelled_call_that_has_not_started_never_runs(loop_thread):
    loop, _ = loop_thread
    bridge = Bridge(loop)
    gate = threading.Event()
    ran = []

    async def main():
        bridge.attach()
        loop.call_soon_threadsafe(gate.wait, 10)  # keep the loop busy
        with trio.move_on_after(0.05):
            await bridge.call(ran.append, "late")
        gate.set()
        await bridge.call(lambda: None)  # runs after anything queued before it

    trio.run(main)
    assert ran == []


def test_other_threads_reach_the_trio_thread(loop_thread):
    loop, _ = loop_thread
    bridge = Bridge(loop)
    seen = []
    stop = trio.Event()

    def from_outside():
        seen.append(bridge.run_sync(threading.current_thread))
        bridge.submit(stop.set)

    async def main():
        bridge.attach()
        seen.append(threading.current_thread())
        await trio.to_thread.run_sync(from_outside)
        await stop.wait()

    trio.run(main)
    assert seen[0] is seen[1]
    bridge.detach()
    with pytest.raises(NetworkStopped):
        bridge.submit(print)
    with pytest.raises(NetworkStopped):
        bridge.run_sync(print)


def test_a_sync_batch_is_fsynced_once_at_its_last_block(tmp_path):
    """An fsync costs as much as importing an empty block: a sync round's batch of blocks syncs
    once, at its last block (LevelDB's log is written in order, so that covers the others)."""
    from node.p2p.bridge import _import_in_order
    from node.p2p.port import ImportResult, Outcome
    from node.store import Store

    class Port:
        def __init__(self) -> None:
            self.durable: list[bool] = []

        def import_block(self, encoded_block: bytes, durable: bool = True) -> ImportResult:
            self.durable.append(durable)
            return ImportResult(Outcome.ACCEPTED, "", len(self.durable))

    port = Port()
    assert len(_import_in_order(port, (b"1", b"2", b"3"))) == 3 and port.durable == [False, False, True]

    class Recording:  # the store's LevelDB, recording each write batch's sync flag
        def __init__(self, db) -> None:
            self.db, self.synced = db, []

        def write_batch(self, **options):
            self.synced.append(options["sync"])
            return self.db.write_batch(**options)

    store = Store(str(tmp_path / "chaindata"))
    real = store.db
    store.db = Recording(real)
    with store.batch(durable=False) as batch:
        batch.put(b"k1", b"v1")
    with store.batch() as batch:
        batch.put(b"k2", b"v2")
    assert store.db.synced == [False, True] and real.get(b"k1") == b"v1" and real.get(b"k2") == b"v2"
    store.db = real
    store.close()
