"""The authority set, voted by admins (DESIGN §5, PoA: "admins vote signers in and out").

An admin's `propose(signer, authorize)` is one vote; when more than half of the
admins agree, the signer is added or removed here. Authority-based engines read
this list at their epoch checkpoints, so a change takes effect at the next
checkpoint block on every node at the same height. Votes that have not reached a
majority are discarded at each checkpoint (`reset_votes`, called by the engine),
as in Clique; the open proposals are listed so that reset touches only them."""
from __future__ import annotations

from vm import gas
from vm.native.contract import CallContext, NativeContract, Revert, abi_function
from vm.native.registry import REGISTRY
from vm.native.roles import SIGNERS_ADDRESS
from vm.state import State
from vm.types import Address

MAX_SIGNERS = 64
MAX_OPEN_PROPOSALS = 64
"""Proposals with votes but no majority yet, per epoch: bounds what a checkpoint resets."""
PROPOSAL_BYTES = 21
"""A proposal is the candidate's address and one byte: 1 to authorize, 0 to remove."""


def _split(packed: bytes) -> list[Address]:
    return [Address(packed[i:i + 20]) for i in range(0, len(packed), 20)]


def _without(packed: bytes, proposal: bytes) -> bytes:
    entries = [packed[i:i + PROPOSAL_BYTES] for i in range(0, len(packed), PROPOSAL_BYTES)]
    return b"".join(entry for entry in entries if entry != proposal)


class Signers(NativeContract):
    name = "Signers"
    default_address = SIGNERS_ADDRESS
    abi_file = "signers.abi.json"

    def current(self, state: State) -> list[Address]:
        """The voted set, in address order (what checkpoint headers carry)."""
        return _split(state.get_storage(self.address, self.slot(b"signers")))

    def write_signers(self, state: State, signers: list[Address]) -> None:
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
        open_proposals = self.load(ctx, self.slot(b"proposals"))
        if not voters:
            if len(open_proposals) >= MAX_OPEN_PROPOSALS * PROPOSAL_BYTES:
                raise Revert(f"signers: {MAX_OPEN_PROPOSALS} proposals already open in this epoch")
            open_proposals += proposal
        voters += ctx.caller
        votes = len(voters) // 20
        self.emit(ctx, "SignerVote", candidate.to_checksum(), authorize, ctx.caller.to_checksum(), votes)
        if votes * 2 <= REGISTRY.admin_count(ctx.state):
            self.store(ctx, self.slot(b"voters", proposal), voters)
            self.store(ctx, self.slot(b"proposals"), open_proposals)
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
        self.store(ctx, self.slot(b"proposals"), _without(open_proposals, proposal))
        self.emit(ctx, "SignerAdded" if authorize else "SignerRemoved", candidate.to_checksum())

    def reset_votes(self, state: State) -> None:
        """Discard every open proposal and its votes (engine bookkeeping at a checkpoint, no gas)."""
        open_proposals = state.get_storage(self.address, self.slot(b"proposals"))
        for start in range(0, len(open_proposals), PROPOSAL_BYTES):
            state.set_storage(self.address, self.slot(b"voters", open_proposals[start:start + PROPOSAL_BYTES]), b"")
        state.set_storage(self.address, self.slot(b"proposals"), b"")

    @abi_function("signers")
    def _signers(self, ctx: CallContext) -> list[str]:
        return [a.to_checksum() for a in _split(self.load(ctx, self.slot(b"signers")))]

    def votes_for(self, state: State, signer: Address, authorize: bool) -> int:
        return len(state.get_storage(self.address, self.slot(b"voters", signer + bytes([authorize])))) // 20

    @abi_function("votes")
    def _votes(self, ctx: CallContext, signer: str, authorize: bool) -> int:
        return len(self.load(ctx, self.slot(b"voters", Address.from_hex(signer) + bytes([authorize])))) // 20


SIGNERS = Signers()
