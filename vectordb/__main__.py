"""``python -m vectordb``: the command line."""

import sys

from vectordb.cli import main

if __name__ == "__main__":
    sys.exit(main())
