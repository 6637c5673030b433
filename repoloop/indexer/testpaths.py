"""Which repository paths are tests: one pattern for the indexer's embedding scope and the
retriever's path prior, so the two never disagree."""

from __future__ import annotations

import re

# A directory named test/tests/testing/__tests__, or a file named test_*, *_test.*, *.spec.* or *.test.*.
TEST_PATH_PATTERN = r"(^|/)(tests?|testing|__tests__)/|(^|/)test_[^/]*$|_test\.\w+$|\.(spec|test)\.\w+$"
_TEST_RX = re.compile(TEST_PATH_PATTERN)


def is_test_path(path: str) -> bool:
    """True for a repo-relative path (forward slashes) inside a test directory or named as a test."""
    return bool(_TEST_RX.search(path))
