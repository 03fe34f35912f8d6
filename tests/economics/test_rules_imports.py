"""The integer rules a validator recomputes import no float library, so the consensus path
does not load numpy, scipy or an LP solver (issue 9's review)."""
import json
import pkgutil
import subprocess
import sys

import consensus.rules as rules

FLOAT_LIBRARIES = ("numpy", "scipy", "pulp", "highspy", "matplotlib")


def test_every_rules_module_imports_without_numpy():
    modules = sorted(f"{rules.__name__}.{m.name}" for m in pkgutil.iter_modules(rules.__path__))
    assert {"community", "line_loss", "poeg", "posoc", "settlement", "shapley"} <= {m.rsplit(".", 1)[1] for m in modules}
    probe = ("import importlib, json, sys\n"
             f"for name in {modules!r}: importlib.import_module(name)\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FLOAT_LIBRARIES!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout) == []


def test_the_probe_sees_numpy_when_a_float_module_is_imported():
    probe = "import sys, market.economics.line_loss; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "True"
