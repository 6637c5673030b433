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

# Extensions that are never worth a content sniff: binary formats, and text formats that are data
# rather than something a person searches (images as SVG, translation catalogues, font metrics).
# A file of any other unknown extension is read and indexed as text when it plainly is text.
NOT_TEXT_EXTENSIONS = frozenset({
    ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff", ".psd", ".xcf",
    ".svg", ".svgz", ".eps", ".ps", ".pdf", ".ai", ".heic", ".avif",
    ".ttf", ".otf", ".woff", ".woff2", ".eot", ".pfb", ".pfm", ".afm", ".pfa",
    ".zip", ".gz", ".tgz", ".bz2", ".xz", ".zst", ".7z", ".rar", ".tar", ".jar", ".war", ".ear", ".whl", ".egg",
    ".so", ".dylib", ".dll", ".exe", ".o", ".obj", ".a", ".lib", ".class", ".pyc", ".pyo", ".pyd", ".wasm",
    ".bin", ".dat", ".db", ".sqlite", ".sqlite3", ".mdb", ".idx", ".pack",
    ".mp3", ".mp4", ".wav", ".ogg", ".oga", ".flac", ".avi", ".mov", ".webm", ".mkv", ".m4a", ".aac", ".mid",
    ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp", ".rtf", ".epub",
    ".npy", ".npz", ".pkl", ".pickle", ".h5", ".hdf5", ".hdf", ".nc", ".fits", ".fit", ".fts", ".parquet",
    ".feather", ".arrow", ".mat", ".sav", ".dta", ".xpt", ".sas7bdat", ".rds", ".rdata", ".joblib", ".pt",
    ".onnx", ".tflite", ".safetensors", ".gguf", ".model",
    ".po", ".pot", ".mo", ".log", ".lock", ".snap", ".pbxproj", ".xib", ".storyboard", ".nib",
})
_CONTROL = bytes(c for c in range(32) if c not in (9, 10, 12, 13, 27))  # tab, LF, FF, CR, ESC are text
_SNIFF_BYTES = 8192

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


def may_be_text_name(path: str) -> bool:
    """True for a name no grammar and no list claims, whose content decides (`looks_like_text`):
    fixtures and configs of any extension (caddy's `*.caddyfiletest`, `.babelrc`) are text."""
    return os.path.splitext(os.path.basename(path))[1].lower() not in NOT_TEXT_EXTENSIONS


def looks_like_text(data: bytes) -> bool:
    """Plainly text: valid UTF-8 and (almost) no control characters in its first 8 KiB."""
    head = data[:_SNIFF_BYTES]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return len(head.translate(None, _CONTROL)) >= len(head) * 0.99


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
