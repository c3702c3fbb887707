"""The commands of ``vectordb``: thin wrappers over the library, one function per command."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Iterator, List, Optional

from vectordb import validation as v
from vectordb.cli import paths, transfer
from vectordb.cli.output import counted, notice, print_json, print_table, shorten
from vectordb.client import DEFAULT, PersistentClient
from vectordb.collection import Collection
from vectordb.embedding_functions.base import build_from_config, describe
from vectordb.embedding_functions.identity import default_function
from vectordb.errors import CollectionNotFoundError, InvalidArgumentError, VectorDBError
from vectordb.index.settings import SPACE_KEY

ALL_FIELDS = ["embeddings", "metadatas", "documents"]


def _open(args: argparse.Namespace, write: bool = False) -> PersistentClient:
    """The store of ``args.path``: read-only unless ``write``. A read of a folder without a
    store raises :class:`~vectordb.cli.paths.NoStoreError`, naming the folder and why it was used."""
    try:
        return PersistentClient(args.path, read_only=not write)
    except InvalidArgumentError:
        if write or not paths.holds_no_store(args.path):
            raise
        source = getattr(args, "path_source", paths.FROM_OPTION)
        raise paths.no_store_error(paths.StorePath(args.path, source)) from None


DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""The model of the default embedding function (registered as ``default``)."""
LOCAL_MODEL_FUNCTIONS = ("sentence_transformer", "instructor")
"""Registered embedding functions that load a model named by their ``model_name`` into this process."""


def model_to_load(function: Any) -> Optional[str]:
    """The name of the local model that ``function`` loads on its first call (seconds of work),
    or None: no function, a hosted or custom one, or a model already loaded."""
    if function is None or getattr(function, "_model", None) is not None:
        return None
    name, config = describe(function)
    if name == "default":
        return DEFAULT_MODEL
    if name in LOCAL_MODEL_FUNCTIONS:
        return str((config or {}).get("model_name") or getattr(function, "model_name", name))
    return None


def announce_model(function: Any) -> None:
    """Say on stderr that the embedding model is loading, if ``function`` has a local model to load."""
    name = model_to_load(function)
    if name is not None:
        notice(f"loading the embedding model {name} ...")


def _parse_json(text: Optional[str], option: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InvalidArgumentError(f"{option}: not valid JSON ({exc})") from None


def describe_collection(collection: Collection) -> Dict[str, Any]:
    """What ``ls`` and ``info`` show of a collection."""
    fn = collection.embedding_function
    fn_name, fn_config = (None, None) if fn is None else describe(fn)
    return {
        "name": collection.name,
        "id": collection.id,
        "count": collection.count(),
        "dimension": collection.dimension,
        "metric": collection.configuration["hnsw"]["space"],  # the catalog's: also a function's default space
        "embedding_function": fn_name,
        "embedding_function_config": fn_config,
        "metadata": collection.metadata,
    }


def cmd_ls(args: argparse.Namespace) -> int:
    """List the collections."""
    with _open(args) as client:
        infos = [describe_collection(c) for c in client.list_collections()]
    if args.json:
        print_json(infos)
    else:
        rows = [[i["name"], i["count"], i["dimension"], i["metric"], i["embedding_function"] or "none"] for i in infos]
        print_table(["NAME", "COUNT", "DIMENSION", "METRIC", "EMBEDDING FUNCTION"], rows)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """Show one collection."""
    with _open(args) as client:
        info = describe_collection(client.get_collection(args.name))
    if args.json:
        print_json(info)
    else:
        info["embedding_function"] = info["embedding_function"] or "none"
        print_table(["FIELD", "VALUE"], [[k, shorten(x, 100) if not isinstance(x, str) else x]
                                         for k, x in info.items()])
    return 0


def cmd_peek(args: argparse.Namespace) -> int:
    """Show the first records of a collection."""
    with _open(args) as client:
        result = client.get_collection(args.name).peek(v.validate_positive_int(args.n, "-n"))
    if args.json:
        print_json(result)
    else:
        rows = [[i, shorten(d), shorten(m)] for i, d, m in zip(result["ids"], result["documents"], result["metadatas"])]
        print_table(["ID", "DOCUMENT", "METADATA"], rows)
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """Nearest neighbours of a text (embedded with the collection's function) or of a vector."""
    mode = getattr(args, "mode", "vector")
    if mode == "vector" and (args.text is None) == (args.embedding is None):
        raise InvalidArgumentError("query: give a text or --embedding (one of them)")
    if mode != "vector" and args.text is None:
        raise InvalidArgumentError(f"query --mode {mode}: give the query text")
    embeds_text = args.text is not None and args.embedding is None and mode != "text"
    with _open(args) as client:
        collection = client.get_collection(args.name)
        if embeds_text and not args.json:
            announce_model(collection.embedding_function)
        result = collection.query(
            query_embeddings=None if args.embedding is None else _parse_json(args.embedding, "--embedding"),
            query_texts=None if mode == "vector" and args.embedding is not None else args.text,
            n_results=args.n,
            where=_parse_json(args.where, "--where"),
            where_document=_parse_json(args.where_document, "--where-document"),
            mode=mode,
        )
    if args.json:
        print_json({k: result[k][0] if isinstance(result[k], list) and k != "included" else result[k] for k in result})
    else:
        value, header = ("distances", "DISTANCE") if mode == "vector" else ("scores", "SCORE")
        rows = [[rank, i, f"{d:.4f}", shorten(doc), shorten(m)] for rank, (i, d, doc, m) in enumerate(
            zip(result["ids"][0], result[value][0], result["documents"][0], result["metadatas"][0]), 1)]
        print_table(["#", "ID", header, "DOCUMENT", "METADATA"], rows)
    return 0


def _import_function(args: argparse.Namespace) -> Any:
    """The function named by --embedding-function (DEFAULT when not given)."""
    name = args.embedding_function
    if name is None:
        return DEFAULT
    if name == "none":
        return None
    config = _parse_json(args.embedding_function_config, "--embedding-function-config") or {}
    if name == "default":
        return default_function()
    return build_from_config(name, config)


def _target(client: PersistentClient, args: argparse.Namespace) -> Collection:
    """The collection to import into: created when missing (with --metric and --embedding-function)."""
    function = _import_function(args)
    try:
        return client.get_collection(args.name, embedding_function=function)
    except CollectionNotFoundError:
        metadata = None if args.metric is None else {SPACE_KEY: args.metric}
        return client.create_collection(args.name, metadata=metadata, embedding_function=function)


def cmd_import(args: argparse.Namespace) -> int:
    """Import records from a JSONL, CSV or Parquet file (upserted: existing ids are updated)."""
    fmt = transfer.guess_format(args.file, args.format)
    fields = None if args.metadata_fields is None else [f.strip() for f in args.metadata_fields.split(",") if f.strip()]
    records = transfer.to_records(transfer.read_rows(args.file, fmt), args.id_field, args.text_field, fields,
                                  args.embedding_field, typed_strings=fmt == "csv")
    _check_records(records)
    if args.embedding_function == "none" and any(r.embedding is None for r in records):
        raise InvalidArgumentError("import: --embedding-function none needs vectors in every row (--embedding-field)")
    batch_size = v.validate_positive_int(args.batch_size, "--batch-size")
    with _open(args, write=True) as client:
        collection = _target(client, args)
        _write_records(collection, records, batch_size, args.no_progress)
        print(f"imported {counted(len(records), 'record')} into {collection.name!r} "
              f"({counted(collection.count(), 'record')} now)")
    return 0


def _write_records(collection: Collection, records: List[transfer.Record], batch_size: int, quiet: bool) -> None:
    if any(r.embedding is None for r in records) and collection.embedding_function is None:
        raise InvalidArgumentError(
            f"collection {collection.name!r} has no embedding function: give vectors with --embedding-field"
        )
    if any(r.embedding is None for r in records) and not quiet:
        announce_model(collection.embedding_function)
    from tqdm.auto import tqdm

    with tqdm(total=len(records), unit="record", desc="importing", disable=True if quiet else None,
              file=sys.stderr) as bar:
        for start in range(0, len(records), batch_size):
            batch = records[start : start + batch_size]
            for group in (
                [r for r in batch if r.document is not None],
                [r for r in batch if r.document is None],
            ):
                if group:
                    _upsert(collection, group)
            bar.update(len(batch))


def _check_records(records: List[transfer.Record]) -> None:
    """Check every record before anything is written."""
    if not records:
        raise InvalidArgumentError("import: the file holds no records")
    v.validate_ids([r.id for r in records])
    v.validate_metadatas([r.metadata for r in records], len(records))
    vectors = [r.embedding for r in records if r.embedding is not None]
    if vectors:
        v.validate_embeddings(vectors)
    for number, record in enumerate(records, 1):
        if record.embedding is None and record.document is None:
            raise InvalidArgumentError(f"row {number}: no text to embed and no embedding (id {record.id!r})")


def _upsert(collection: Collection, records: List[transfer.Record]) -> None:
    have_vectors = records[0].embedding is not None
    collection.upsert(
        ids=[r.id for r in records],
        embeddings=[r.embedding for r in records] if have_vectors else None,
        metadatas=[r.metadata for r in records],
        documents=None if records[0].document is None else [r.document for r in records],
    )


def cmd_export(args: argparse.Namespace) -> int:
    """Export every record (id, document, metadata, embedding) to JSONL or Parquet."""
    fmt = transfer.guess_format(args.file, args.format)
    if fmt == "parquet":
        transfer.pyarrow_modules()
    page_size = v.validate_positive_int(args.batch_size, "--batch-size")
    with _open(args) as client:
        collection = client.get_collection(args.name)
        count = transfer.write_rows(args.file, fmt, _pages(collection, page_size))
    print(f"exported {counted(count, 'record')} of {args.name!r} to {args.file}")
    return 0


def _pages(collection: Collection, page_size: int) -> Iterator[List[Dict[str, Any]]]:
    offset = 0
    while True:
        result = collection.get(limit=page_size, offset=offset, include=ALL_FIELDS)
        if not result["ids"]:
            return
        yield list(transfer.export_rows(result))
        offset += len(result["ids"])


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo."""
    try:
        from vectordb import demo
    except ImportError:
        raise VectorDBError("the demo is not part of this installation of vectordb") from None
    demo.main(args.path)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve a store over HTTP."""
    from vectordb.server import serve

    serve(args.path, host=args.host, port=args.port, auth_token=args.auth_token,
          max_body_mb=args.max_body_mb, log_level=args.log_level, allow_reset=args.allow_reset)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Check that a store's records, metadata, indexes and catalog agree; exit 1 if problems remain."""
    with _open(args, write=args.repair) as client:
        report = client.check(repair=args.repair)
    if args.json:
        print_json({
            "collections_checked": report.collections_checked,
            "ok": report.ok,
            "problems": [{"collection": p.collection, "what": p.what, "repaired": p.repaired} for p in report.problems],
            "notes": [{"collection": n.collection, "what": n.what, "repaired": n.repaired} for n in report.notes],
        })
    else:
        print(report)
    return 0 if report.ok else 1


def cmd_compact(args: argparse.Namespace) -> int:
    """Rebuild indexes from their live vectors and shrink the database file."""
    with _open(args, write=True) as client:
        result = client.compact() if args.name is None else client.get_collection(args.name).compact()
    if args.json:
        print_json({"bytes_before": result.bytes_before, "bytes_after": result.bytes_after,
                    "indexes_rebuilt": result.indexes_rebuilt})
    else:
        print(f"compacted: {result.bytes_before} -> {result.bytes_after} bytes on disk, "
              f"{counted(result.indexes_rebuilt, 'index', 'indexes')} rebuilt")
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    """Copy collections between stores (see :mod:`vectordb.cli.copy`)."""
    from vectordb.cli.copy import copy_collections, open_store

    with open_store(args.source, must_exist=True) as source, open_store(args.target) as target:
        summary = copy_collections(source, target, args.names, args.batch_size, args.no_progress)
    if args.json:
        print_json(summary)
    else:
        print_table(["collection", "records"], [[s["name"], s["records"]] for s in summary])
    return 0
