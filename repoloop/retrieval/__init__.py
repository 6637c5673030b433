"""Retrieval: lexical, dense, graph and name signals fused, packed into a token budget."""
