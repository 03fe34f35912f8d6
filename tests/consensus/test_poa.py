"""PoA turn-taking: in-turn signers seal first and weigh more; recent signers wait."""
from __future__ import annotations

import pytest
from consensus.engine import Signer
from consensus.poa import PoAConfig, ProofOfAuthority
from vm.blocks import Header, InvalidBlock
from vm.types import ZERO_ADDRESS, ZERO_HASH

SIGNERS = [Signer(bytes([i]) * 32) for i in (1, 2, 3)]
ENGINE = ProofOfAuthority(PoAConfig(tuple(s.address for s in SIGNERS), period=2))


class Chain:
    def __init__(self, headers):
        self.by_hash = {h.hash: h for h in headers}

    def header_by_hash(self, block_hash):
        return self.by_hash.get(block_hash)

    def header_by_number(self, number):
        return next((h for h in self.by_hash.values() if h.number == number), None)


def header(number, parent, producer, difficulty, timestamp):
    return Header(parent.hash if parent else ZERO_HASH, number, timestamp, producer, ZERO_HASH, ZERO_HASH, ZERO_HASH,
                  b"\x00" * 256, 30_000_000, 0, 10**9, difficulty)


def test_turns_weights_and_backup_delays():
    genesis = header(0, None, ZERO_ADDRESS, 1, 100)
    chain = Chain([genesis])
    in_turn = SIGNERS[1].address  # block 1 belongs to signer index 1
    assert ENGINE.production_time(chain, genesis, in_turn) == 102
    assert ENGINE.production_time(chain, genesis, SIGNERS[0].address) == 104
    assert ENGINE.production_time(chain, genesis, SIGNERS[2].address) == 106  # block 2's in-turn signer backs up last
    assert ENGINE.prepare(chain, genesis, in_turn, 102, None).difficulty == 2
    assert ENGINE.prepare(chain, genesis, SIGNERS[2].address, 106, None).difficulty == 1
    assert ENGINE.production_time(chain, genesis, Signer(b"\x09" * 32).address) is None


def test_seal_verifies_and_recent_signer_must_wait():
    genesis = header(0, None, ZERO_ADDRESS, 1, 100)
    block1 = ENGINE.seal(header(1, genesis, SIGNERS[1].address, 2, 102), SIGNERS[1])
    chain = Chain([genesis, block1])
    ENGINE.verify_header(chain, block1, genesis)
    assert ENGINE.weight(block1) == 2
    assert ENGINE.production_time(chain, block1, SIGNERS[1].address) is None  # signed within ⌊3/2⌋+1 blocks
    repeat = ENGINE.seal(header(2, block1, SIGNERS[1].address, 1, 104), SIGNERS[1])
    with pytest.raises(InvalidBlock, match="signed too recently"):
        ENGINE.verify_header(chain, repeat, block1)
    early = ENGINE.seal(header(2, block1, SIGNERS[2].address, 2, 103), SIGNERS[2])
    with pytest.raises(InvalidBlock, match="period"):
        ENGINE.verify_header(chain, early, block1)


def test_after_one_missed_turn_the_next_block_is_in_turn_again():
    """Four signers, all up; signer 1 misses its turn at block 5 once. Each block is sealed by
    whoever may seal first. Were the nearest-turn backups first, every later block would be out of
    turn (its in-turn signer too recent for its own turn), each a period late."""
    four = [Signer(bytes([i]) * 32) for i in (1, 2, 3, 4)]
    engine = ProofOfAuthority(PoAConfig(tuple(s.address for s in four), period=1))
    genesis = header(0, None, ZERO_ADDRESS, 1, 100)
    chain, parent, sealed = Chain([genesis]), genesis, []
    for number in range(1, 13):
        times = {s.address: engine.production_time(chain, parent, s.address) for s in four}
        if number == 5:
            del times[four[1].address]  # signer 1 is away for its turn
        producer = min((t, s) for s, t in times.items() if t is not None)[1]
        signer = next(s for s in four if s.address == producer)
        fields = engine.prepare(chain, parent, producer, times[producer], None)
        block = engine.seal(header(number, parent, producer, fields.difficulty, times[producer]), signer)
        engine.verify_header(chain, block, parent)
        chain.by_hash[block.hash] = block
        sealed.append(block.difficulty)
        parent = block
    assert sealed == [2] * 4 + [1, 1] + [2] * 6  # the only backup free at 5 is 6's in-turn signer
    assert parent.timestamp == 100 + 12 + 2  # a period lost at 5 and at 6, then none
