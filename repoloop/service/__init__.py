"""The index as a live service: an MCP server over one warm Retriever, and a watcher that keeps
the index fresh as files change. Both are long-running; the CLI (`repoloop serve`, `repoloop watch`)
only parses arguments and calls in here."""
