"""The trial's domain: aggregates, their events and the value types they carry."""
