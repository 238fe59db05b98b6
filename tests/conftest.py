"""Fixtures shared by every test directory; each section belongs to one area."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import settings

# --- runtime tests (tests/unit/dataflows, tests/e2e) ------------------------------------
# Pipelines in these tests name test-only adapters by dotted path
# (`tests.e2e.adapters_for_tests:AlwaysFails`), so the repository root must be importable
# however pytest was started (`pytest` alone does not put the working directory on the path).
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

# --- property tests (hypothesis) ----------------------------------------------------------
# No per-example deadline: the properties are about results, and a loaded 2-core machine
# (CI, or tests run side by side) makes a 200 ms deadline fail examples that are correct.
settings.register_profile("factflow", deadline=None)
settings.load_profile("factflow")
