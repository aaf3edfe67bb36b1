"""Tamper evidence: the hash chain over the stored events, its verification, signed checkpoints."""
