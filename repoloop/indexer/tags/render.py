"""Render extracted tags: a universal-ctags-compatible `tags` file, or JSON-ready dicts.

The tags file follows the extended format editors read (vim's 'tags', emacs' etags-compatible
readers, readtags): `!_TAG_` header lines, then `name<TAB>path<TAB>line;"<TAB>kind<TAB>field:value...`
sorted by byte value so a reader can binary-search it (`!_TAG_FILE_SORTED 1`). The address is the
line number (`--excmd=number` in ctags' terms): stable, and needs no pattern escaping.
"""

from __future__ import annotations

from collections.abc import Iterator

from repoloop.indexer.tags.extract import RefTag, Tag, TagsResult

_HEADER = (
    "!_TAG_FILE_FORMAT\t2\t/extended format; --format=1 will not append ;\" to lines/",
    "!_TAG_FILE_SORTED\t1\t/0=unsorted, 1=sorted, 2=foldcase/",
    "!_TAG_OUTPUT_EXCMD\tnumber\t/number, pattern, mixed, or combineV2/",
    "!_TAG_OUTPUT_FILESEP\tslash\t/slash or backslash/",
    "!_TAG_PROGRAM_NAME\trepoloop\t/tree-sitter definitions/",
)


def _clean(s: str) -> str:
    """Tabs and newlines would break a line's fields."""
    return s.replace("\t", " ").replace("\n", " ").replace("\r", " ") if ("\t" in s or "\n" in s or "\r" in s) else s


def _path(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def tag_line(t: Tag, prefix: str = "") -> str:
    line = f'{_clean(t.name)}\t{_clean(_path(prefix, t.path))}\t{t.line};"\t{t.kind}\tline:{t.line}'
    if t.local_scope:
        line += f"\t{t.scope_kind or 'class'}:{_clean(t.local_scope)}"
    return f"{line}\tend:{t.end_line}"


def ref_line(r: RefTag, prefix: str = "") -> str:
    return f'{_clean(r.name)}\t{_clean(_path(prefix, r.path))}\t{r.line};"\treference\tline:{r.line}\troles:ref'


def ctags_lines(result: TagsResult, prefix: str = "") -> Iterator[str]:
    """Header then sorted tag lines (no newlines). `prefix`: prepended to paths, so that they are
    relative to the directory of the tags file when it is not the tree's root."""
    yield from _HEADER
    lines = [tag_line(t, prefix) for t in result.tags]
    lines.extend(ref_line(r, prefix) for r in result.refs)
    # Sorting whole lines sorts by name first: TAB (0x09) is below every character of a name.
    # Python compares code points, which is the byte order of UTF-8.
    lines.sort()
    yield from lines


def tag_dict(t: Tag) -> dict:
    return {"name": t.name, "qualname": t.qualname, "kind": t.kind, "path": t.path, "line": t.line,
            "end_line": t.end_line, "scope": t.scope}


def ref_dict(r: RefTag) -> dict:
    return {"name": r.name, "path": r.path, "line": r.line, "count": r.count}


def to_json(result: TagsResult, *, refs: bool = False) -> dict:
    """`{"tags": [...]}` in path then line order (with refs: also `"refs": [...]`), plus counts."""
    out: dict = {"tags": [tag_dict(t) for t in sorted(result.tags, key=lambda t: (t.path, t.line, t.name))]}
    if refs:
        out["refs"] = [ref_dict(r) for r in sorted(result.refs, key=lambda r: (r.path, r.line, r.name))]
    out["files"] = result.files
    out["skipped"] = result.skipped
    return out
