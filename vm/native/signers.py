"""The authority set, voted by admins (DESIGN §5, PoA: "admins vote signers in and out").

An admin's `propose(signer, authorize)` is one vote; when more than half of the
admins agree, the signer is added or removed here. Authority-based engines read
this list at their epoch checkpoints, so a change takes effect at the next
checkpoint block on every node at the same height."""
from __future__ import annotations

from vm import gas
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.registry import REGISTRY
from vm.state import State
from vm.types import Address

MAX_SIGNERS = 64


def _split(packed: bytes) -> list[Address]:
    return [Address(packed[i:i + 20]) for i in range(0, len(packed), 20)]


class Signers(NativeContract):
    name = "Signers"
    address = Address(bytes.fromhex("6772696400000000000000000000000000000002"))  # "grid" ‖ 2
    abi_file = "signers.abi.json"

    def current(self, state: State) -> list[Address]:
        """The voted set, in address order (what checkpoint headers carry)."""
        return _split(state.get_storage(self.address, self.slot(b"signers")))

    def write_genesis(self, state: State, signers: list[Address]) -> None:
        state.set_storage(self.address, self.slot(b"signers"), b"".join(sorted(signers)))

    @abi_function("propose")
    def _propose(self, ctx: CallContext, signer: str, authorize: bool) -> None:
        ctx.charge(gas.STORAGE_READ)
        if not REGISTRY.is_admin(ctx.state, ctx.caller):
            raise Revert("signers: caller is not an admin")
        candidate = Address.from_hex(signer)
        signers = _split(self.load(ctx, self.slot(b"signers")))
        if (candidate in signers) == authorize:
            raise Revert("signers: already " + ("a signer" if authorize else "not a signer"))
        proposal = candidate + bytes([authorize])
        voters = self.load(ctx, self.slot(b"voters", proposal))
        if ctx.caller in _split(voters):
            raise Revert("signers: already voted")
        voters += ctx.caller
        votes = len(voters) // 20
        self.emit(ctx, "SignerVote", candidate.to_checksum(), authorize, ctx.caller.to_checksum(), votes)
        if votes * 2 <= REGISTRY.admin_count(ctx.state):
            self.store(ctx, self.slot(b"voters", proposal), voters)
            return
        if authorize:
            if len(signers) >= MAX_SIGNERS:
                raise Revert(f"signers: at most {MAX_SIGNERS} signers")
            signers.append(candidate)
        else:
            if len(signers) == 1:
                raise Revert("signers: cannot remove the last signer")
            signers.remove(candidate)
        self.store(ctx, self.slot(b"signers"), b"".join(sorted(signers)))
        self.store(ctx, self.slot(b"voters", proposal), b"")
        self.emit(ctx, "SignerAdded" if authorize else "SignerRemoved", candidate.to_checksum())

    @abi_function("signers")
    def _signers(self, ctx: CallContext) -> list[str]:
        return [a.to_checksum() for a in _split(self.load(ctx, self.slot(b"signers")))]

    @abi_function("votes")
    def _votes(self, ctx: CallContext, signer: str, authorize: bool) -> int:
        return len(self.load(ctx, self.slot(b"voters", Address.from_hex(signer) + bytes([authorize])))) // 20


SIGNERS = Signers()
