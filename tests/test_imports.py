"""Every module of the package imports on its own, whatever was imported before."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import healthscore

# Each module is imported after every healthscore module is dropped from
# sys.modules, so an import cycle that only breaks when a given module loads first
# fails here.
_IMPORT_EACH = """
import importlib, sys
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "healthscore"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failed.append(f"{name}: {error!r}")
print("\\n".join(failed))
"""


def _module_names() -> list[str]:
    walked = pkgutil.walk_packages(healthscore.__path__, prefix="healthscore.")
    # The Spark module needs the optional pyspark, which the spark tests cover.
    return sorted(m.name for m in walked if not m.name.endswith(".spark"))


def test_modules_import_each_in_a_fresh_module_table():
    names = _module_names()
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *names],
        capture_output=True,
        text=True,
        check=True,
    )

    assert len(names) > 40
    assert done.stdout.strip() == ""
