"""Files with no grammar but worth finding (docs, configs, scripts): indexed as language "text".

They get no symbols, only line-window chunks, so lexical and dense search still find a README
paragraph or a setting in a YAML file.
"""

from __future__ import annotations

import os

from repoloop.indexer.models import Chunk, ParsedFile

TEXT_LANGUAGE = "text"

TEXT_EXTENSIONS = frozenset({
    ".md", ".markdown", ".rst", ".txt", ".adoc", ".org", ".tex",
    ".toml", ".yaml", ".yml", ".json", ".jsonc", ".json5", ".cfg", ".ini", ".conf", ".properties",
    ".xml", ".html", ".htm", ".css", ".scss", ".sass", ".less", ".vue", ".svelte",
    ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd", ".sql", ".graphql", ".gql", ".proto",
    ".thrift", ".cmake", ".mk", ".gradle", ".kt", ".kts", ".scala", ".swift", ".m", ".mm", ".lua",
    ".pl", ".pm", ".r", ".jl", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj", ".dart", ".zig", ".nim",
    ".tf", ".hcl", ".nix", ".dockerfile", ".env.example", ".csv", ".tsv", ".in", ".tmpl", ".j2",
    ".jinja", ".mako", ".pyx", ".pxd", ".pyi", ".ipynb",
})
TEXT_FILENAMES = frozenset({
    "Makefile", "makefile", "GNUmakefile", "Dockerfile", "Containerfile", "Jenkinsfile", "Procfile",
    "LICENSE", "LICENCE", "COPYING", "NOTICE", "AUTHORS", "CHANGELOG", "CHANGES", "README", "TODO",
    "CODEOWNERS", "MANIFEST.in", ".gitignore", ".gitattributes", ".editorconfig", ".dockerignore",
    ".repoloopignore", "requirements.txt", "setup.cfg", "tox.ini", "BUILD", "WORKSPACE",
})

WINDOW_LINES = 40
_MIN_BREAK = 25  # prefer to end a window at a blank line or a heading once it has this many lines


def is_text_name(path: str) -> bool:
    """True for files indexed as text when no grammar claims them (extensionless files included:
    scripts and well-known names; binaries among them are caught by the content sniff)."""
    base = os.path.basename(path)
    if base in TEXT_FILENAMES:
        return True
    ext = os.path.splitext(base)[1].lower()
    return ext in TEXT_EXTENSIONS or (ext == "" and not base.startswith("."))


def chunk_text(path: str, text: str) -> list[Chunk]:
    """Line windows of up to WINDOW_LINES, broken at a blank line or a heading where possible."""
    lines = text.splitlines()
    chunks: list[Chunk] = []
    start = 0
    n = len(lines)
    while start < n:
        end = min(start + WINDOW_LINES, n)
        if end < n:
            for i in range(end, start + _MIN_BREAK, -1):
                if not lines[i].strip() or lines[i].startswith("#"):
                    end = i
                    break
        body = "\n".join(lines[start:end])
        if body.strip():
            chunks.append(Chunk(start_line=start + 1, end_line=end, text=body, symbol=None, kind="text",
                                header=path))
        start = end
    return chunks


def parse_text(path: str, source: bytes) -> ParsedFile:
    text = source.decode("utf-8", errors="replace")
    return ParsedFile(path=path, language=TEXT_LANGUAGE, module="", chunks=chunk_text(path, text),
                      lines=text.count("\n") + (1 if text and not text.endswith("\n") else 0))
