"""The study service (see DESIGN.md); built in its own issue."""
