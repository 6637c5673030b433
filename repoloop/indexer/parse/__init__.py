"""Parsing: source bytes -> symbols, references and chunks (tree-sitter, per-language handlers)."""
