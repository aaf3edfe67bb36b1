"""The protocol definition: the trial's parameters as versioned data shipped in the package."""

from ledger.protocol.definition import Protocol, ProtocolError, available_versions, load_protocol

__all__ = ["Protocol", "ProtocolError", "available_versions", "load_protocol"]
