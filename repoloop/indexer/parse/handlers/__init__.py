"""Per-language knowledge for the parse engine: which nodes are definitions, how they are named,
what an import or a base class looks like. One small `Handler` subclass per language."""

from __future__ import annotations

from importlib import import_module

from repoloop.indexer.parse.handlers.base import Handler, definition_captures, last_ident, nested_definitions

__all__ = ["Handler", "definition_captures", "handler_for", "last_ident", "nested_definitions"]

# language -> (module, class name, constructor arguments)
_REGISTRY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "python": ("python", "PythonHandler", ()),
    "javascript": ("javascript", "JavaScriptHandler", ("javascript",)),
    "typescript": ("javascript", "JavaScriptHandler", ("typescript",)),
    "tsx": ("javascript", "JavaScriptHandler", ("tsx",)),
    "go": ("go", "GoHandler", ()),
    "rust": ("rust", "RustHandler", ()),
    "java": ("java", "JavaHandler", ()),
    "c": ("cfamily", "CFamilyHandler", ("c",)),
    "cpp": ("cfamily", "CFamilyHandler", ("cpp",)),
    "c_sharp": ("csharp", "CSharpHandler", ()),
    "ruby": ("ruby", "RubyHandler", ()),
    "php": ("php", "PhpHandler", ()),
}


def handler_for(language: str) -> Handler:
    """The handler of a language (ValueError when unsupported)."""
    try:
        mod, cls, args = _REGISTRY[language]
    except KeyError:
        raise ValueError(f"no parser for language {language!r}") from None
    return getattr(import_module(f"repoloop.indexer.parse.handlers.{mod}"), cls)(*args)
