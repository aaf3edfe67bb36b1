"""Signed checkpoints: the chain's head at a moment, signed with Ed25519, kept outside the system.

``ledger seal --key KEY`` verifies the ledger, then writes a checkpoint: the chain hash at the
last position, the number of events, the time and who sealed, and an Ed25519 signature over
the canonical JSON of those fields (sorted keys, no spaces, UTF-8). The auditor keeps the file
(and the public key) elsewhere. ``ledger verify --checkpoint FILE`` checks the signature and
that the ledger's chain, recomputed from the stored events, passes through the checkpoint's
hash at its position: a ledger rewritten after the checkpoint, even with every link
recomputed, does not.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "trial-ledger checkpoint 1"


class CheckpointError(Exception):
    """A checkpoint file that cannot be read or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    format: str
    position: int
    chain_hash: str
    events: int
    sealed_at: str
    sealed_by: str
    public_key: str  # raw Ed25519 public key, hex

    def message(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def load_or_create_key(path: Path) -> tuple[Ed25519PrivateKey, bool]:
    """The Ed25519 private key in ``path`` (PEM), created (mode 0600) when the file does not exist."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError(f"{path} holds no Ed25519 private key")
        return key, False
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return key, True


def public_hex(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def seal(key: Ed25519PrivateKey, position: int, chain_hash: str, events: int, sealed_at: str, sealed_by: str) -> dict[str, Any]:
    checkpoint = Checkpoint(FORMAT, position, chain_hash, events, sealed_at, sealed_by, public_hex(key))
    return {**asdict(checkpoint), "signature": key.sign(checkpoint.message()).hex()}


def read_checkpoint(path: Path, trusted_key: str | None = None) -> Checkpoint:
    """The checkpoint in ``path`` once its signature verifies (with ``trusted_key``, hex, when given)."""
    try:
        data = json.loads(path.read_text())
        signature = bytes.fromhex(data.pop("signature"))
        checkpoint = Checkpoint(**data)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path} is not a ledger checkpoint: {error}") from None
    if checkpoint.format != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {checkpoint.format!r}")
    if trusted_key is not None and trusted_key.lower() != checkpoint.public_key.lower():
        raise CheckpointError(f"{path} was signed with key {checkpoint.public_key[:16]}…, not the trusted key {trusted_key[:16]}…")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint.public_key)).verify(signature, checkpoint.message())
    except (InvalidSignature, ValueError):
        raise CheckpointError(f"{path}: the signature does not verify: the checkpoint was altered") from None
    return checkpoint
