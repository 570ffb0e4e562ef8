"""The experiments' tests share the suite's fixtures and helpers (tests/conftest.py,
tests/cli_helpers.py): the real data, skipped where it is absent, and `run`/`load_script`.

    python -m pytest scripts/experiments/tests     # not in the default run (testpaths = tests)
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[3] / "tests"
sys.path.insert(0, str(TESTS))  # cli_helpers and reference, as tests/ imports them

_spec = importlib.util.spec_from_file_location("suite_conftest", TESTS / "conftest.py")
_suite = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_suite)

# pytest finds fixtures among a conftest's names
data_dir, omniglot_dir, session_cache = _suite.data_dir, _suite.omniglot_dir, _suite.session_cache
