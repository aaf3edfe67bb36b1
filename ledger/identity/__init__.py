"""Users, credentials and authentication (docs/access.md)."""
