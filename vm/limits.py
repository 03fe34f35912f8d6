"""The byte budget, in one place: how large a transaction, a header, a block, a
gossip message and a sync response may be, each derived from the ones before it.

The rule it keeps (DESIGN §4.6): a block a producer seals is always one every
peer can import. Gas alone does not give that, since zero-byte calldata costs 4
gas a byte and a 60M-gas block could carry ~14 MB; so the producer also counts
bytes, against the same constants the importers, gossip and sync enforce:

    transaction  ≤ MAX_TRANSACTION_SIZE                  (mempool, decode)
    header       ≤ MAX_HEADER_BYTES                      (largest fields, extra data, seal)
    block        ≤ MAX_BLOCK_BYTES = MAX_GOSSIP_MESSAGE  (producer, decode, gossip)
    gossip msg   ≤ MAX_GOSSIP_MESSAGE = GOSSIP_RPC_LIMIT − GOSSIP_ENVELOPE_RESERVE
    sync answer  ≤ MAX_BLOCKS_RESPONSE_BYTES = SYNC_RESPONSE_BLOCKS · MAX_BLOCK_BYTES

These are protocol constants, the same on every node: a node with a larger block
limit would seal blocks its peers refuse. The asserts at the end check the
relations at import, so a change to one constant that breaks them fails loudly."""
from __future__ import annotations

MAX_TRANSACTION_SIZE = 128 * 1024
"""Largest raw signed transaction: go-ethereum's txpool limit (txMaxSize, 4 slots of
32 KiB); Besu's default is the same order. Larger ones are refused as "oversized data"."""

MAX_EXTRA_DATA = 2048
"""Largest header extra data: room for an engine's checkpoint data (PoA: up to 64
signers of 20 bytes); the engine checks the content. (geth allows 32 bytes of vanity
plus Clique's signer list and seal.)"""

MAX_SEAL_BYTES = 65
"""Largest engine seal: PoA's 65-byte signature r ‖ s ‖ v (PoW's nonce is 8 bytes)."""

MAX_UINT_BYTES = 32
"""Integers in headers and transactions are at most 256 bits, as in Ethereum."""

MAX_RLP_DEPTH = 4
"""Deepest list nesting any gridnode object has (a typed transaction's access list:
transaction › access list › entry › storage keys; a receipt's logs › log › topics).
Deeper input is refused before it is walked."""


def rlp_string_size(length: int) -> int:
    """Encoded size of a byte string of `length` bytes (at most; a single byte below 0x80 is 1)."""
    return length + 1 + (0 if length < 56 else (length.bit_length() + 7) // 8)


def rlp_list_size(payload_length: int) -> int:
    """Encoded size of a list whose items encode to `payload_length` bytes in all."""
    return payload_length + 1 + (0 if payload_length < 56 else (payload_length.bit_length() + 7) // 8)


MAX_HEADER_BYTES = rlp_list_size(
    4 * rlp_string_size(32)                 # parent hash, state, transactions and receipts roots
    + rlp_string_size(20)                   # producer
    + rlp_string_size(256)                  # logs bloom
    + 6 * rlp_string_size(MAX_UINT_BYTES)   # number, timestamp, gas limit, gas used, base fee, difficulty
    + rlp_string_size(MAX_EXTRA_DATA)
    + rlp_string_size(MAX_SEAL_BYTES))
"""The largest encoded header (2,731 bytes): every field at its bound. The producer
reserves this much before it knows the header, and `Header.decode` refuses more."""


def encoded_block_size(header_size: int, transactions_payload: int) -> int:
    """Size of `Block.encode()`, RLP [header bytes, [raw transaction, …]], for a header of
    `header_size` bytes and transactions whose RLP items (`rlp_string_size(len(raw))`)
    add up to `transactions_payload` bytes."""
    return rlp_list_size(rlp_string_size(header_size) + rlp_list_size(transactions_payload))


GOSSIP_RPC_LIMIT = 1024 * 1024
"""Largest gossipsub RPC frame: py-libp2p's DefaultMaxMessageSize (go-libp2p-pubsub's
DefaultMaxMessageSize is the same 1 MiB). A larger RPC is dropped on send and resets
the stream on receive, so a block must fit one RPC with its envelope."""

GOSSIP_ENVELOPE_RESERVE = 4096
"""Bytes of the RPC left for the envelope around our payload: protobuf tags, sender
peer id, seqno, topic, signature and public key (about 200 bytes with ed25519 keys),
with room to spare for control messages piggybacked on the same RPC."""

MAX_GOSSIP_MESSAGE = GOSSIP_RPC_LIMIT - GOSSIP_ENVELOPE_RESERVE
"""Largest gossip payload we publish or accept (a block, or a batch of transactions)."""

MAX_BLOCK_BYTES = MAX_GOSSIP_MESSAGE
"""Largest encoded block (1,044,480 bytes): a block is gossiped as one message, so it may be as
large as a gossip payload and no larger. The producer stops filling a block here and
importers refuse a larger one before decoding it. (geth bounds blocks by gas only and
sends them in devp2p messages of up to 10 MiB; libp2p gossip is the tighter channel.)"""

SYNC_RESPONSE_BLOCKS = 4
"""A sync response holds at least this many maximal blocks: whole blocks only, so the
byte cap must be at least one block, and a few keep the number of round trips low
while bounding what one answer holds in memory."""

MAX_BLOCKS_RESPONSE_BYTES = SYNC_RESPONSE_BLOCKS * MAX_BLOCK_BYTES
"""Byte cap on the blocks of one sync response (geth's soft response limit is 2 MiB)."""

MAX_TRANSACTION_ITEM = rlp_string_size(MAX_TRANSACTION_SIZE)
"""Room one maximal transaction takes in a block."""

assert encoded_block_size(MAX_HEADER_BYTES, MAX_TRANSACTION_ITEM) <= MAX_BLOCK_BYTES, \
    "a block must hold the largest header and one maximal transaction"
assert MAX_BLOCK_BYTES <= MAX_GOSSIP_MESSAGE, "a sealed block must fit one gossip message"
assert MAX_GOSSIP_MESSAGE + GOSSIP_ENVELOPE_RESERVE <= GOSSIP_RPC_LIMIT, "a gossip message must fit one RPC"
assert MAX_BLOCKS_RESPONSE_BYTES >= MAX_BLOCK_BYTES, "a sync response must hold any block a peer accepts"
