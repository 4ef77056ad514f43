"""The local platform: the store, the broker, every service and demo data on one machine."""
