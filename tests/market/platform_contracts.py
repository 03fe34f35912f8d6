"""Two small contracts that exercise the platform the way market contracts use it."""
from __future__ import annotations

from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.storage import Array, Mapping, Struct, Value
from vm.types import Address

NOTE = Struct(amount="uint256", text="string")
NOTES = Array(b"notes", NOTE)
WORDS = Mapping(b"word", "bytes")
TICKS = Value(b"ticks", "uint256")
FAILING = Value(b"failing", "bool")


class Probe(NativeContract):
    name = "Probe"
    abi_file = "probe.abi.json"
    default_address = Address(b"\x0b" * 20)

    @abi_function("deposit")
    def _deposit(self, ctx: CallContext) -> None:
        if ctx.value == 0:
            raise Revert("probe: nothing deposited")

    @abi_function("pay")
    def _pay(self, ctx: CallContext, to: str, amount: int) -> None:
        ctx.call(Address.from_hex(to), b"", value=amount)

    @abi_function("forward")
    def _forward(self, ctx: CallContext, to: str, data: bytes) -> bytes:
        return ctx.call(Address.from_hex(to), data)

    @abi_function("forwardAndFail")
    def _forward_and_fail(self, ctx: CallContext, to: str, data: bytes) -> None:
        ctx.call(Address.from_hex(to), data)
        raise Revert("probe: failing after the call")

    @abi_function("boom")
    def _boom(self, ctx: CallContext) -> None:
        NOTES.push(ctx, {"amount": 1, "text": "before the bug"})
        _ = 1 // 0

    @abi_function("recurse")
    def _recurse(self, ctx: CallContext, depth: int) -> int:
        if depth == 0:
            return ctx.depth
        (reached,) = self.invoke(ctx, ctx.address, "recurse(uint256)", (depth - 1,), ("uint256",))
        return reached

    @abi_function("spawn")
    def _spawn(self, ctx: CallContext) -> str:
        instance = ctx.contracts.create(ctx, "Probe")
        self.invoke(ctx, instance, "note(uint256,string)", (7, "instance"))
        return instance.to_checksum()

    @abi_function("note")
    def _note(self, ctx: CallContext, amount: int, text: str) -> None:
        index = NOTES.push(ctx, {"amount": amount, "text": text})
        self.emit(ctx, "Noted", index, amount, text)

    @abi_function("noteAt")
    def _note_at(self, ctx: CallContext, index: int) -> tuple:
        if index >= NOTES.length(ctx):
            return False, 0, ""
        note = NOTES.get(ctx, index)
        return True, note["amount"], note["text"]

    @abi_function("notes")
    def _notes(self, ctx: CallContext) -> int:
        return NOTES.length(ctx)

    @abi_function("putWord")
    def _put_word(self, ctx: CallContext, key: bytes, value: bytes) -> None:
        WORDS.set(ctx, key, value)

    @abi_function("environment")
    def _environment(self, ctx: CallContext) -> tuple:
        env = ctx.env
        return env.number, env.timestamp, env.producer.to_checksum(), env.chain_id, env.base_fee

    @abi_function("whoCalls")
    def _who_calls(self, ctx: CallContext) -> tuple:
        return ctx.caller.to_checksum(), ctx.origin.to_checksum()

    @abi_function("burnGas")
    def _burn_gas(self, ctx: CallContext) -> None:
        while True:
            ctx.charge(1_000)


class Clock(NativeContract):
    """Counts blocks at their end; `setFailing(true)` makes its end-of-block work revert."""

    name = "Clock"
    abi_file = "clock.abi.json"
    default_address = Address(b"\x0c" * 20)
    has_end_of_block = True

    def end_of_block(self, ctx: CallContext) -> None:
        if FAILING.get(ctx):
            TICKS.set(ctx, 10**6)
            raise Revert("clock: told to fail")
        TICKS.set(ctx, TICKS.get(ctx) + 1)
        self.emit(ctx, "Tick", ctx.env.number)

    @abi_function("ticks")
    def _ticks(self, ctx: CallContext) -> int:
        return TICKS.get(ctx)

    @abi_function("setFailing")
    def _set_failing(self, ctx: CallContext, failing: bool) -> None:
        FAILING.set(ctx, failing)
