"""A model that says when its worker is inside the timed loop, for the Ctrl-C tests.

``marked_hang`` writes its worker's pid to the file named by ``EDGEBENCH_TEST_MARK`` at its
second call (the first timed inference), then sleeps: a test sends SIGINT once the file exists,
so the interrupt lands while a worker is measuring, however slow the machine is.
"""

import os
import time
from pathlib import Path

from worker_models import _Misbehaving


def _mark_and_hang():
    mark = Path(os.environ["EDGEBENCH_TEST_MARK"])
    partial = mark.with_suffix(".partial")
    partial.write_text(str(os.getpid()))
    partial.rename(mark)  # whole or absent: the test never reads half a pid
    time.sleep(3600)


def marked_hang():
    return _Misbehaving(_mark_and_hang)
