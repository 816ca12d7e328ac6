"""A nightly suite file of two tiny ONNX models on ONNX Runtime with a given [regress] table, and
`edgebench run` options that measure it fast: for the tests of `regress --suite`."""

from pathlib import Path

FAST = ["--min-time", "0.2", "--max-time", "1", "--warmup", "0.05", "--min-iterations", "5", "--threads", "1",
        "--processes", "1", "--no-power"]
MATRIX = '[matrix]\nmodels = ["a.onnx", "b.onnx"]\nbackends = ["onnxruntime"]\n'


def suite_file(tmp_path: Path, regress_table: str, name: str = "nightly", matrix: str = MATRIX) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(f'name = "{name}"\n{matrix}[regress]\n{regress_table}')
    return path
