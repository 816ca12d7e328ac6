"""Remote targets: a board reached with the system's OpenSSH client.

The board runs only the small worker (``edgebench.board`` and ``edgebench.board.runners``, Python
3.8 with numpy and its backend); everything else stays on the workstation.
"""
