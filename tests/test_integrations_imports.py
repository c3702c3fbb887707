"""Frameworks are optional: ``import vectordb`` imports none, and a missing one is a typed error naming the extra."""

from __future__ import annotations

from conftest import in_new_process

FRAMEWORKS = ("langchain", "langchain_core", "langchain_tests", "llama_index")


def test_import_vectordb_imports_no_framework():
    loaded = in_new_process(
        f"""
        import json, sys
        import vectordb, vectordb.integrations, vectordb.integrations.records
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {FRAMEWORKS!r})))
        """
    )
    assert loaded == []


def test_a_missing_framework_raises_missing_dependency_error_naming_the_extra():
    seen = in_new_process(
        """
        import json, sys
        for name in ("langchain_core", "llama_index", "llama_index.core"):
            sys.modules[name] = None  # as if not installed: importing it raises ImportError
        from vectordb.errors import MissingDependencyError
        seen = {}
        for module in ("vectordb.integrations.langchain", "vectordb.integrations.llama_index"):
            try:
                __import__(module)
            except MissingDependencyError as exc:
                seen[module] = [exc.extra, exc.package, isinstance(exc, ImportError), str(exc)]
        print(json.dumps(seen))
        """
    )
    lc = seen["vectordb.integrations.langchain"]
    li = seen["vectordb.integrations.llama_index"]
    assert lc[:3] == ["langchain", "langchain-core", True] and 'pip install "vectordb[langchain]"' in lc[3]
    assert li[:3] == ["llama-index", "llama-index-core", True] and 'pip install "vectordb[llama-index]"' in li[3]
