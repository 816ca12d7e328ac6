"""edgebench: benchmark and profile neural networks on embedded targets.

Kept import-light on purpose: the worker side (``edgebench.board``, ``edgebench.board.runners``)
is shipped to boards with Python 3.8 and only numpy plus the backend library installed.
"""

__version__ = "0.1.0"
