"""Notify: the right people hear about every case, on real channels, exactly once."""
