"""`repoloop tags`: definitions (and references) of a whole tree, fast, and their rendering."""
