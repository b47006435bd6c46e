"""``python -m tlcnn_helpers``: see :mod:`tlcnn_helpers.cli`."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
