"""The core pipeline must not import mitmproxy or textual (one core for the proxy, the offline audit and the tests)."""

import pkgutil
import subprocess
import sys

import inspector.core

CORE_MODULES = sorted(
    f"inspector.core.{m.name}" for m in pkgutil.iter_modules(inspector.core.__path__)
)


def test_core_has_the_pipeline_modules():
    for name in ("observation", "decode", "keys", "policy", "audit", "pii", "event", "pipeline"):
        assert f"inspector.core.{name}" in CORE_MODULES


def test_core_modules_import_neither_mitmproxy_nor_textual():
    code = (
        "import importlib, sys\n"
        f"for name in {CORE_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('mitmproxy', 'textual'))\n"
        "print(','.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"core imported: {result.stdout} {result.stderr}"
