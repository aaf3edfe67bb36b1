"""The ledger's events for downstream systems: the feed by position, the head watcher, the NATS relay."""
