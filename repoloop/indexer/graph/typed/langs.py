"""Per-language type syntax (see `typed.syntax`): each language's parser of declared types, and
the member calls that hand back what a holder holds (`opt.unwrap()`) or the holder itself."""

from __future__ import annotations

from repoloop.indexer.graph.typed.go import parse_go
from repoloop.indexer.graph.typed.java import parse_java
from repoloop.indexer.graph.typed.rust import parse_rust
from repoloop.indexer.graph.typed.ts import parse_ts

PARSERS = {"go": parse_go, "rust": parse_rust, "js": parse_ts, "java": parse_java}
# Member calls that hand back what a holder holds (`opt.unwrap()`), or the holder itself.
UNWRAP = {"rust": frozenset({"unwrap", "expect", "unwrap_or_default", "unwrap_or", "unwrap_or_else",
                             "unwrap_unchecked", "get_or_insert_with", "get_or_init", "borrow", "borrow_mut",
                             "get_mut", "into_inner", "upgrade"}),
          "js": frozenset(), "go": frozenset(), "java": frozenset({"get", "orElse", "orElseThrow", "join"})}
PASS = {"rust": frozenset({"as_ref", "as_mut", "lock", "read", "write", "clone", "as_deref", "as_deref_mut",
                           "ok", "take", "cloned", "copied"}),
        "js": frozenset(), "go": frozenset(), "java": frozenset()}
