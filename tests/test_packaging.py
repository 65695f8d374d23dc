"""The package stages to remote workers: ``python setup.py sdist`` builds and carries every module."""

import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sdist_holds_every_module(tmp_path):
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    [archive] = tmp_path.glob("eventlake-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "eventlake").rglob("*.py")}
    assert modules <= names
    assert "setup.py" in names and "eventlake/py.typed" in names
