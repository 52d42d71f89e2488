"""pytest set-up: the generated Python bindings (and the library next to
them) are imported from $CHANTRY_MOBILE_PY, which scripts/test-mobile.sh
fills with scripts/mobile-bindings.sh --python."""

import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _here)
_bindings = os.environ.get("CHANTRY_MOBILE_PY")
if not _bindings:
    raise RuntimeError(
        "CHANTRY_MOBILE_PY is not set: run scripts/test-mobile.sh, or "
        "scripts/mobile-bindings.sh --python DIR and point it at DIR"
    )
sys.path.insert(0, _bindings)
