"""The dependency graph: references resolved to symbols and imports to files, stored as edges."""
