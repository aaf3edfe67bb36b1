"""The ledger's boundaries: marshmallow schemas, the CLI and the bulk importer."""
