"""Pure-Python tests of the collection's module_utils and filters: no database, no subprocess.

The collection is imported as ``ansible_collections.yuantus.relmigrate`` through ``.collections`` (the link that
``tools/bootstrap.sh`` makes; made here too when missing).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_LINK = REPO / ".collections" / "ansible_collections" / "yuantus" / "relmigrate"
if not (_LINK.is_symlink() and _LINK.resolve() == REPO):
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    if _LINK.is_symlink() or _LINK.exists():
        _LINK.unlink()
    _LINK.symlink_to(REPO)
if str(REPO / ".collections") not in sys.path:
    sys.path.insert(0, str(REPO / ".collections"))
