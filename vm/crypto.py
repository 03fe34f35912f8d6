"""Keccak-256 and secp256k1 in the Ethereum conventions (coincurve, safe-pysha3).

pysha3's C keccak is used because it is ~7x faster per call than
pycryptodome's here, and hashing sits on every hot path."""
from __future__ import annotations

import coincurve
import sha3

from vm.types import Address, Hash32

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2


class InvalidSignature(ValueError):
    """The signature does not recover to a public key."""


_as_hash = bytes.__new__


def keccak256(data: bytes) -> Hash32:
    """A digest is 32 bytes by construction, so `Hash32`'s length check is skipped: it was a
    third of this call, and the state tree makes thousands of these per block."""
    return _as_hash(Hash32, sha3.keccak_256(data).digest())


def public_key_to_address(public_key_uncompressed: bytes) -> Address:
    """The last 20 bytes of keccak(x ‖ y), as Ethereum derives addresses."""
    return Address(keccak256(public_key_uncompressed[1:])[12:])


def private_key_to_address(private_key: bytes) -> Address:
    return public_key_to_address(coincurve.PrivateKey(private_key).public_key.format(compressed=False))


def recover_address(message_hash: bytes, y_parity: int, r: int, s: int) -> Address:
    """Recover the signer of `message_hash`; rejects high-s signatures (EIP-2)."""
    if not (0 < r < SECP256K1_N and 0 < s <= SECP256K1_HALF_N and y_parity in (0, 1)):
        raise InvalidSignature("invalid signature values")
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([y_parity])
    try:
        public_key = coincurve.PublicKey.from_signature_and_message(signature, message_hash, hasher=None)
    except Exception as exc:  # coincurve raises a bare Exception for unrecoverable points
        raise InvalidSignature("invalid signature") from exc
    return public_key_to_address(public_key.format(compressed=False))


def sign(message_hash: bytes, private_key: bytes) -> tuple[int, int, int]:
    """Sign a 32-byte hash; returns (y_parity, r, s) with low s."""
    signature = coincurve.PrivateKey(private_key).sign_recoverable(message_hash, hasher=None)
    return signature[64], int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
