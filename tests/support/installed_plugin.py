"""A third-party package installed the way pip leaves it: a module and its .dist-info with
entry points, in a directory the caller puts on sys.path. importlib.metadata finds it for real."""

import textwrap
from pathlib import Path


def install_plugin(directory: Path, module: str, source: str, entry_points: dict) -> Path:
    """Write ``module.py`` and ``module-0.1.dist-info`` under ``directory``; ``entry_points`` maps
    a group to ``{name: "module:attribute"}``. Returns ``directory``."""
    (directory / f"{module}.py").write_text(textwrap.dedent(source))
    dist_info = directory / f"{module}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    sections = [f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
                for group, entries in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(sections))
    return directory
