"""schemathesis hooks for fuzzing the HTTP API, in the tests and against a live ``ledger serve``.

tests/e2e/test_openapi_fuzz.py imports this module; a fuzz of a running server loads it from
the repository's root (docs/http.md, "Conformance")::

    SCHEMATHESIS_HOOKS=tests.e2e.fuzz_hooks schemathesis run http://127.0.0.1:8080/openapi.json ...
"""

from __future__ import annotations

from typing import Any

import schemathesis

#: a long poll (``GET /events?wait=``) waits as long as it is asked to when nothing commits:
#: the fuzz asks for little, or a run would spend most of its time waiting
QUICK_WAIT = 0.05


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A valid ``wait`` is kept short; an invalid one is sent as generated."""
    wait = (case.query or {}).get("wait")
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > QUICK_WAIT:
        case.query["wait"] = QUICK_WAIT
    return case
