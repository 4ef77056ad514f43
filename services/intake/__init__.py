"""Intake: every resident request gets in, once, and is never lost (听在网格)."""
