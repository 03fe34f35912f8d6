"""Coverage-guided fuzzing of every decoder that reads bytes from a peer: blocks,
headers, receipts, transactions, and the wire's status, request, response and
transaction-batch messages. The first input byte picks the decoder, the rest is
its input; any exception but the decoder's documented ones is a finding.

atheris is not a gridnode dependency; install it beside the venv and run, from
the repository root, for a bounded time:

    pip install atheris==3.1.0        # or 3.0.0, the version this was run with
    PYTHONPATH=. python fuzz/atheris_decoders.py --seeds fuzz/corpus     # once: valid inputs to start from
    PYTHONPATH=. python fuzz/atheris_decoders.py -max_total_time=60 -rss_limit_mb=2048 fuzz/corpus

libFuzzer mutates the seeds (a signed transaction of each type, a block, a header,
a receipt, each wire message) and keeps the inputs that reach new code in
`fuzz/corpus`, so later runs start from them; a failing input is written to ./crash-*.
The hypothesis tests in tests/vm/test_decoding_fuzz.py check the same contract
on every CI run."""
from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["vm", "node.p2p.wire"]):
    from node.p2p.wire import (RemoteError, WireError, decode_items, decode_request, decode_status,
                               decode_transaction_batch)
    from vm.blocks import Header, InvalidBlock, Receipt, decode_block
    from vm.transactions import InvalidTransaction, decode_transaction

def _canonical(decode, encode):
    """`decode`, checking that what it accepts re-encodes to the same bytes."""
    def check(data: bytes) -> None:
        assert encode(decode(data)) == data, "accepted a non-canonical encoding"
    return check


DECODERS = [
    (_canonical(lambda data: decode_block(data, decode_transaction), lambda block: block.encode()), (InvalidBlock,)),
    (_canonical(Header.decode, Header.encode), (InvalidBlock,)),
    (_canonical(Receipt.decode, Receipt.encode), (InvalidBlock,)),
    (_canonical(decode_transaction, lambda tx: tx.raw), (InvalidTransaction,)),
    (decode_status, (WireError,)),
    (decode_request, (WireError,)),
    (lambda data: decode_items(data, 128), (WireError, RemoteError)),
    (decode_transaction_batch, (WireError,)),
]
"""Each decoder with the only exceptions it may raise."""


def test_one_input(data: bytes) -> None:
    if not data:
        return
    decoder, documented = DECODERS[data[0] % len(DECODERS)]
    try:
        decoder(data[1:])
    except documented:
        return


def write_seeds(directory: Path) -> None:
    """One valid input per decoder, prefixed with the byte that selects it."""
    from eth_account import Account

    from node.p2p.port import ChainStatus
    from node.p2p.wire import BlocksRequest, encode_items, encode_request, encode_status, encode_transaction_batch
    from vm.blocks import Block, Log
    from vm.types import Address, Hash32

    sender = Account.from_key("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
    base = {"to": "0x" + "22" * 20, "value": 5, "gas": 30_000, "nonce": 3, "chainId": 1337, "data": b"\x00\x01"}
    raws = [bytes(sender.sign_transaction({**base, **fees}).raw_transaction) for fees in (
        {"gasPrice": 7}, {"gasPrice": 7, "accessList": [{"address": "0x" + "33" * 20, "storageKeys": ["0x" + "01" * 32]}]},
        {"maxFeePerGas": 9, "maxPriorityFeePerGas": 2})]
    header = Header(Hash32(b"\x01" * 32), 5, 6, Address(b"\x02" * 20), Hash32(b"\x03" * 32), Hash32(b"\x04" * 32),
                    Hash32(b"\x05" * 32), bytes(256), 30_000_000, 63_000, 7, 2, b"\x09" * 20, b"\x08" * 65)
    receipt = Receipt(2, True, 21_000, 21_000, 7, (Log(Address(b"\x02" * 20), (b"\x03" * 32,), b"data"),), bytes(256))
    seeds = [
        (0, Block(header, tuple(decode_transaction(raw) for raw in raws)).encode()), (1, header.encode()),
        (2, receipt.encode()), *((3, raw) for raw in raws),
        (4, encode_status(ChainStatus(1337, b"\x01" * 32, 5, b"\x02" * 32, 2**70))),
        (5, encode_request(BlocksRequest(1, 16))), (6, encode_items([b"block"])), (7, encode_transaction_batch(raws)),
    ]
    directory.mkdir(parents=True, exist_ok=True)
    for number, (decoder, data) in enumerate(seeds):
        (directory / f"seed-{number}").write_bytes(bytes([decoder]) + data)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--seeds"]:
        write_seeds(Path(sys.argv[2]))
    else:
        atheris.Setup(sys.argv, test_one_input)
        atheris.Fuzz()
