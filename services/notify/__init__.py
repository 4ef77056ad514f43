"""The notify service (see DESIGN.md); built in its own issue."""
