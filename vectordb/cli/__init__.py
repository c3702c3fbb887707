"""The ``vectordb`` command line (also ``python -m vectordb``).

Every command prints tables for people and, with ``--json``, JSON for programs. An
error is one line on stderr (``vectordb: error: ...``) and a non-zero exit status.
A command that opens a store uses ``--path DIR``, else ``$VECTORDB_PATH``, else
``./vectordb_data`` (:mod:`vectordb.cli.paths`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import List, NoReturn, Optional

from vectordb.cli import paths
from vectordb.cli.paths import DEFAULT_PATH, PATH_ENV
from vectordb.version import __version__
from vectordb.errors import VectorDBError

MAIN_EPILOG = (
    f"Commands that open a store take --path DIR; without it they use the folder in ${PATH_ENV}, "
    f"or {DEFAULT_PATH} when that is not set. New here? Run: vectordb demo"
)

EPILOGS = {
    "serve": "Example: vectordb serve --path ./db --port 8000 --auth-token s3cret",
    "ls": "Example: vectordb ls --path ./db --json",
    "info": "Example: vectordb info notes --path ./db",
    "peek": "Example: vectordb peek notes --path ./db -n 5",
    "query": "Example: vectordb query notes \"a cat on a mat\" --path ./db -n 3 --where '{\"year\": {\"$gte\": 2020}}'",
    "import": "Example: vectordb import notes notes.jsonl --path ./db --text-field text --metadata-fields year,tag",
    "export": "Example: vectordb export notes notes.parquet --path ./db",
    "check": "Example: vectordb check --path ./db --repair",
    "compact": "Example: vectordb compact notes --path ./db",
    "demo": "Example: vectordb demo --path ./demo_db",
    "copy": "Example: vectordb copy --from ./db --to milvus://127.0.0.1:19530 notes",
}


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line, not a usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add(sub: "argparse._SubParsersAction", name: str, help: str, path: bool = True) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help, description=help, epilog=EPILOGS.get(name))
    if path:
        parser.add_argument("--path", metavar="DIR", default=None, help=paths.PATH_HELP)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command."""
    from vectordb.cli import commands as c

    parser = _Parser(prog="vectordb", description="A lightweight local vector database.", epilog=MAIN_EPILOG)
    parser.add_argument("--version", action="version", version=f"vectordb {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _add(sub, "serve", "Serve a store over HTTP (REST API documented at /docs).")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.add_argument("--auth-token", default=os.environ.get("VECTORDB_AUTH_TOKEN"),
                   help="require 'Authorization: Bearer TOKEN' on every request (default: $VECTORDB_AUTH_TOKEN)")
    p.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body accepted (default: 64)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--allow-reset", action="store_true",
                   help="let clients call reset(), which deletes every collection (default: refused)")
    p.set_defaults(func=c.cmd_serve)

    p = _add(sub, "ls", "List the collections with their size, dimension, metric and embedding function.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=c.cmd_ls)

    p = _add(sub, "info", "Show one collection.")
    p.add_argument("name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=c.cmd_info)

    p = _add(sub, "peek", "Show the first records of a collection.")
    p.add_argument("name")
    p.add_argument("-n", type=int, default=10, help="how many (default: 10)")
    p.add_argument("--json", action="store_true", help="print JSON (with embeddings)")
    p.set_defaults(func=c.cmd_peek)

    p = _add(sub, "query", "Nearest records to a text (embedded with the collection's function) or a vector.")
    p.add_argument("name")
    p.add_argument("text", nargs="?", help="the query text")
    p.add_argument("--embedding", help="the query vector as JSON, instead of a text")
    p.add_argument("-n", type=int, default=5, help="how many results (default: 5)")
    p.add_argument("--where", help="metadata filter as JSON")
    p.add_argument("--where-document", help="document filter as JSON")
    p.add_argument("--mode", choices=["vector", "text", "hybrid"], default="vector",
                   help="vector (default), text (BM25 over the documents) or hybrid (both, fused)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=c.cmd_query)

    p = _add(sub, "import", "Import records from JSONL, CSV or Parquet; the collection is created if missing.")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet"], help="default: from the file's extension")
    p.add_argument("--id-field", default="id", help="default: id")
    p.add_argument("--text-field", default="document", help="the text to store and embed (default: document)")
    p.add_argument("--metadata-fields", help="comma-separated fields to keep as metadata "
                   "(default: the 'metadata' object if rows have one, else every other field)")
    p.add_argument("--embedding-field",
                   help="vectors to store instead of embedding texts (default: 'embedding' if present)")
    p.add_argument("--embedding-function", help="for a new collection: 'default', 'none' or a registered name; "
                   "for an existing one it must match (default: the collection's own, or 'default')")
    p.add_argument("--embedding-function-config", help="its config as JSON")
    p.add_argument("--metric", choices=["l2", "cosine", "ip"], help="for a new collection (default: l2)")
    p.add_argument("--batch-size", type=int, default=256, help="records per write (default: 256)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=c.cmd_import)

    p = _add(sub, "export", "Export every record (id, document, metadata, embedding) to JSONL or Parquet.")
    p.add_argument("name")
    p.add_argument("file")
    p.add_argument("--format", choices=["jsonl", "parquet"], help="default: from the file's extension")
    p.add_argument("--batch-size", type=int, default=1000, help="records read at a time (default: 1000)")
    p.set_defaults(func=c.cmd_export)

    p = _add(sub, "check", "Check that records, metadata, indexes and catalog agree (exit 1 if not).")
    p.add_argument("--repair", action="store_true", help="fix what can be fixed")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=c.cmd_check)

    p = _add(sub, "compact", "Rebuild indexes from their live vectors and shrink the database file.")
    p.add_argument("name", nargs="?", help="one collection (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=c.cmd_compact)

    p = _add(sub, "copy", "Copy collections (records, metadata, embedding function) between stores; "
             "rerun to finish an interrupted copy.", path=False)
    p.add_argument("--from", dest="source", required=True, help="a store folder, milvus://HOST:PORT or milvus-lite:PATH")
    p.add_argument("--to", dest="target", required=True, help="a store folder, milvus://HOST:PORT or milvus-lite:PATH")
    p.add_argument("names", nargs="*", metavar="NAME", help="collections to copy (default: all)")
    p.add_argument("--batch-size", type=int, default=1000, help="records per write (default: 1000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=c.cmd_copy)

    p = _add(sub, "demo", "Run the demo.", path=False)
    p.add_argument("--path", default="./demo_db", help="folder for the demo's store (default ./demo_db)")
    p.set_defaults(func=c.cmd_demo)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run one command; returns (and, as a script, exits with) its status."""
    logging.basicConfig(level=logging.WARNING, format="vectordb: warning: %(message)s")
    args = build_parser().parse_args(argv)
    _resolve_path(args)
    try:
        return args.func(args)
    except VectorDBError as exc:
        return _fail(str(exc))
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130


def _resolve_path(args: argparse.Namespace) -> None:
    """Fill in the store folder of a command that opens one (``args.path``) and where it came
    from (``args.path_source``: ``--path``, ``$VECTORDB_PATH`` or ``default``)."""
    if not hasattr(args, "path") or args.command == "demo":
        return
    where = paths.resolve(args.path)
    args.path, args.path_source = where.path, where.source


def _fail(message: str) -> int:
    print(f"vectordb: error: {' '.join(message.split())}", file=sys.stderr)
    return 1
