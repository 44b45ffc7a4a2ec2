"""Lets the examples run from a source checkout without installing: puts
<repo>/python on sys.path when the shmchan package is not installed."""

import os
import sys

try:
    import shmchan  # noqa: F401
except ImportError:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
