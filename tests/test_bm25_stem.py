"""Light stemming of the query's plain words for BM25 (Weights.bm25_stem): "redirects" finds code that
only says "redirect" (scrapy's redirect middleware ranked 15th fused for such a query, BM25 missing
it), while identifiers stay whole."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from repoloop.retrieval.api import RetrievalOptions
from repoloop.retrieval.lexical import variants
from repoloop.retrieval.retriever import open_retriever
from repoloop.retrieval.weights import DEFAULT
from tests.test_retrieval_fixtures import index, write_repo

FILES = {
    "mw/redirect.py": """
        class RedirectMiddleware:
            def _redirect(self, redirected, request, reason):
                ttl = request.meta.get('redirect_ttl', self.max_redirect_times)
                return redirected
    """,
    "mw/cookies.py": """
        def merge_cookies(jar, response):
            return jar.update(response.cookies)
    """,
}


def test_variants_are_light_and_leave_identifiers_whole() -> None:
    assert variants("redirects") == ("redirect",)
    assert variants("retries") == ("retry",)
    assert variants("status") == () and variants("class") == ()
    assert variants("max_redirects") == ()  # an identifier: whole
    assert variants("http") == ()  # too short to stem


def test_a_plural_in_the_query_finds_the_singular_in_code(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", FILES)
    index(root)
    query = "follow redirects"
    plain = open_retriever(root, options=RetrievalOptions(weights=dataclasses.replace(DEFAULT, bm25_stem=False))).lexical.search(query, 10)
    stem = open_retriever(root).lexical.search(query, 10)  # the default
    assert plain.ids == []  # "redirects" and "follow" are nowhere as such
    assert len(stem.ids) == 1  # the redirect middleware, through "redirect"
