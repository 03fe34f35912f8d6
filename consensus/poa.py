"""Proof of authority, Clique-style: a fixed signer set named in genesis takes
turns by height; a block is sealed by its signer's signature over the seal hash.

In-turn blocks weigh 2 and out-of-turn blocks 1; a signer may not seal again
within ⌊N/2⌋+1 blocks of its last one, so a minority cannot run the chain.
Signer voting and out-of-turn backup order arrive with the network."""
from __future__ import annotations

from dataclasses import dataclass

from consensus.engine import ChainReader, Engine, HeaderFields, Signer
from vm.blocks import Header, InvalidBlock, Receipt
from vm.crypto import InvalidSignature, recover_address
from vm.state import State
from vm.types import Address

IN_TURN, OUT_OF_TURN = 2, 1


@dataclass(frozen=True)
class PoAConfig:
    signers: tuple[Address, ...]
    period: int
    """Seconds between a block and its child."""

    @classmethod
    def from_params(cls, params: dict, block_time: int) -> "PoAConfig":
        signers = params.get("signers")
        if not isinstance(signers, list) or not signers:
            raise ValueError("consensus.signers must list at least one signer address")
        addresses = tuple(Address.from_hex(s) for s in signers)
        if len(set(addresses)) != len(addresses):
            raise ValueError("consensus.signers lists a signer twice")
        return cls(addresses, block_time)


class ProofOfAuthority(Engine):
    name = "poa"

    def __init__(self, config: PoAConfig) -> None:
        self.config = config

    def _in_turn(self, number: int, signer: Address) -> bool:
        signers = self.config.signers
        return signers[number % len(signers)] == signer

    def _recently_signed(self, chain: ChainReader, parent: Header, signer: Address) -> bool:
        limit = len(self.config.signers) // 2 + 1
        header = parent
        for _ in range(limit - 1):
            if header.number == 0:
                return False
            if header.producer == signer:
                return True
            header = chain.header_by_hash(header.parent_hash)
        return False

    def validators(self, chain: ChainReader, parent: Header) -> list[Address]:
        return list(self.config.signers)

    def production_time(self, chain: ChainReader, parent: Header, producer: Address) -> int | None:
        if producer not in self.config.signers or self._recently_signed(chain, parent, producer):
            return None
        earliest = parent.timestamp + self.config.period
        if self._in_turn(parent.number + 1, producer):
            return earliest
        # Out of turn: wait one period per place behind the in-turn signer, so backups don't collide.
        signers = self.config.signers
        distance = (signers.index(producer) - (parent.number + 1)) % len(signers)
        return earliest + distance * self.config.period

    def prepare(self, chain: ChainReader, parent: Header, producer: Address, state: State) -> HeaderFields:
        return HeaderFields(difficulty=IN_TURN if self._in_turn(parent.number + 1, producer) else OUT_OF_TURN)

    def seal(self, header: Header, signer: Signer) -> Header:
        return header.with_seal(signer.sign(header.seal_hash))

    def author(self, header: Header) -> Address:
        if len(header.seal) != 65:
            raise InvalidBlock("poa: seal must be a 65-byte signature")
        r, s = int.from_bytes(header.seal[:32], "big"), int.from_bytes(header.seal[32:64], "big")
        try:
            return recover_address(header.seal_hash, header.seal[64], r, s)
        except InvalidSignature as exc:
            raise InvalidBlock("poa: invalid seal signature") from exc

    def verify_header(self, chain: ChainReader, header: Header, parent: Header) -> None:
        signer = self.author(header)
        if signer != header.producer:
            raise InvalidBlock(f"poa: sealed by {signer.to_checksum()} but names {header.producer.to_checksum()}")
        if signer not in self.config.signers:
            raise InvalidBlock(f"poa: {signer.to_checksum()} is not an authorized signer")
        if header.timestamp < parent.timestamp + self.config.period:
            raise InvalidBlock("poa: block sealed before its parent's period ended")
        expected = IN_TURN if self._in_turn(header.number, signer) else OUT_OF_TURN
        if header.difficulty != expected:
            raise InvalidBlock(f"poa: wrong difficulty {header.difficulty}, want {expected}")
        if self._recently_signed(chain, parent, signer):
            raise InvalidBlock(f"poa: {signer.to_checksum()} signed too recently")

    def weight(self, header: Header) -> int:
        return header.difficulty

    def finalize(self, chain: ChainReader, header: Header, state: State, receipts: tuple[Receipt, ...]) -> None:
        """PoA mints nothing and penalises nothing: signers earn the transaction fees."""
