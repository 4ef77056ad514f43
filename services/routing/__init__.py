"""Routing: every request becomes a case in the right grid, tracked to closure (听在网格; docs/architecture.md)."""
