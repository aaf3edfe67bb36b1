"""trial-ledger: an event-sourced audit ledger for the NCT02311998 trial."""

__version__ = "0.1.0"
