"""The report's history figure: a key's change point and the environment change at it, marked and told."""

from __future__ import annotations

import numpy as np

from edgebench.report.build import build_report
from edgebench.report.write import write_report
from edgebench.results.store import Store

from records import ENV, add_run, synthetic_record

UPGRADED = {**ENV, "packages": {**ENV["packages"], "onnxruntime": "1.32.0"}}


def test_the_history_marks_a_step_where_a_library_was_upgraded(tmp_path):
    path, out = tmp_path / "store.db", tmp_path / "report"
    noise = 1.0 + 0.005 * np.random.default_rng(4).standard_normal(12)
    ids = []
    with Store.open(path) as store:
        for night in range(12):
            upgraded = night >= 8
            p50 = 2.0 * (1.04 if upgraded else 1.0) * noise[night]  # +4%: under regress's 5% threshold
            env = UPGRADED if upgraded else ENV

            def make(run_id, started_at, p50=p50, env=env, night=night):
                return [synthetic_record(run_id, p50, per_process=50, process_sd=0.002, seed=night,
                                         created_at=started_at, env=env)]
            ids.append(add_run(store, make, env=env).id)
        data = build_report(store, out)
    (figure,) = data.figures["history"]
    assert f"Change point for onnxruntime at run {ids[8]}" in figure.note
    assert "(+4." in figure.note or "(+3." in figure.note
    assert f"Environment changed at run {ids[8]}: packages.onnxruntime: 1.31.1 -> 1.32.0." in figure.note
    assert figure.note.count("Environment changed") == 1  # the other nights ran on the same environment

    with Store.open(path, create=False) as store:
        page = write_report(store, out).read_text()
    assert f"Change point for onnxruntime at run {ids[8]}" in page
