"""Embedding: encoders, the embedding phase of indexing and the vector stores it fills."""
