"""Indexer: walk a repository, parse it with tree-sitter, chunk it, store it in SQLite."""
