"""repoloop: pre-index big codebases and run a retrieval-fed coding agent in a sandbox."""

__version__ = "0.1.0"
