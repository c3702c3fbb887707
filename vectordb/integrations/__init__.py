"""First-party integrations of vectordb with application frameworks.

Each framework has its own module, imported only when you import it, so ``import vectordb``
never imports a framework:

* :mod:`vectordb.integrations.langchain`: :class:`VectorDBStore`, a LangChain ``VectorStore``
  (``pip install "vectordb[langchain]"``).
* :mod:`vectordb.integrations.llama_index`: :class:`VectorDBVectorStore`, a LlamaIndex vector
  store (``pip install "vectordb[llama-index]"``).

They use only vectordb's public API (``Client`` and ``Collection`` methods), so they work the
same in memory, on disk and through ``HttpClient``. A missing framework raises
:class:`vectordb.errors.MissingDependencyError` naming the extra to install.
:mod:`vectordb.integrations.records` holds what both share (opening the collection,
metadata that replaces rather than merges); it imports no framework.
"""
