"""The measuring side: the worker process, the timing harness, statistics and inputs.

Everything here and in ``edgebench.board.runners`` runs on the board, so it stays importable on
Python 3.8 with only the standard library, numpy and the backend being measured
(``tests/board/test_board_side.py`` checks both).
"""
