"""A producing chain and a follower that imports every block it makes, for the score-based
engines (PoEG, PoSOC): blocks by any place in the producer order, on a clock the test moves."""
from __future__ import annotations

import time

from eth_account import Account

from consensus.engine import Signer
from genesis.config import Genesis
from node.chain import Chain
from node.mempool import Mempool
from node.producer import produce_block
from node.store import Store
from vm.transactions import decode_transaction
from vm.types import Address

VALIDATORS = [Signer(bytes([k + 1]) * 32) for k in range(3)]


class ScoredNet:
    def __init__(self, tmp_path, document: dict, align: int, start: int | None = None) -> None:
        """Blocks start just after a multiple of `align` seconds: `start` (a fixed past time makes
        every block hash, and so every draw, the same on each run) or 50 minutes ago."""
        genesis = Genesis.from_json(document)
        self.chain = Chain(Store(str(tmp_path / "producer")), genesis, genesis.create_engine())
        self.follower = Chain(Store(str(tmp_path / "follower")), genesis, genesis.create_engine())
        start = int(time.time()) - 3000 if start is None else start
        self.time = start // align * align + 1

    def order(self) -> tuple[Address, ...]:
        return self.chain.engine.schedule(self.chain.state())

    def signer(self, position: int = 0) -> Signer:
        return next(v for v in VALIDATORS if v.address == self.order()[position])

    def block(self, txs=(), position: int = 0, delay: int = 0, follow: bool = True):
        """The block the validator at `position` of the order makes `delay` s late, imported by the follower."""
        self.time += 1 + delay
        mempool = Mempool(self.chain.chain_id, self.chain.genesis.gas_limit)
        for tx in txs:
            mempool.add(tx, self.chain.state(), self.base_fee())
        block = produce_block(self.chain, mempool, self.signer(position), self.time).block
        if follow:
            self.follower.import_block(block)
        return block

    def base_fee(self) -> int:
        return self.chain.environment(self.chain.head, 0, VALIDATORS[0].address).base_fee

    def call(self, private_key: bytes, to: Address, data: bytes, gas: int = 300_000):
        """A signed call from `private_key`'s account at its next nonce on the producer's head."""
        account = Account.from_key(private_key)
        nonce = self.chain.state().get_account(Address.from_hex(account.address)).nonce
        return decode_transaction(bytes(account.sign_transaction({
            "type": 2, "chainId": self.chain.chain_id, "nonce": nonce, "to": to.to_checksum(), "value": 0,
            "data": data, "gas": gas, "maxFeePerGas": 2 * self.base_fee(), "maxPriorityFeePerGas": 1}).raw_transaction))
