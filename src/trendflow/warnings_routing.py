"""Third-party deprecation noise off the console, still there at debug level.

Libraries TrendFlow runs (omegaconf through Kedro, MLflow, pandas, ...) emit DeprecationWarning,
FutureWarning and "... is deprecated" UserWarnings that a user cannot act on; Kedro's logging
prints each as a multi-line WARNING. `route_third_party_warnings()` sends those to the
`trendflow.deprecations` logger at DEBUG instead, so conf/logging.yml decides whether they show
(its `trendflow.deprecations` level: INFO hides them, DEBUG shows them). Warnings raised from
TrendFlow's own code, and every other warning, go on to the previous handler unchanged.

It is installed from `trendflow.settings` (imported by every `kedro` command, the Kedro IPython
extension and KedroSession) and by the `trendflow` CLI, before the noisy libraries load.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import TextIO

logger = logging.getLogger("trendflow.deprecations")
_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_DEPRECATION_CATEGORIES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)
# Third-party notices that are not deprecations but are just as unactionable for a user.
_NOTICES = re.compile(
    r"deprecat|will be removed|Add type hints to the `predict` method|"
    r"pkg_resources is deprecated|Pydantic V1 style",
    re.IGNORECASE,
)


def is_third_party_noise(message: Warning | str, category: type[Warning], filename: str) -> bool:
    """A deprecation (or listed notice) raised outside TrendFlow's own package."""
    if str(Path(filename).resolve()).startswith(_PACKAGE_DIR):
        return False
    return issubclass(category, _DEPRECATION_CATEGORIES) or bool(_NOTICES.search(str(message)))


def route_third_party_warnings() -> None:
    """Install the routing once per process (idempotent)."""
    previous = warnings.showwarning
    if getattr(previous, "_trendflow_routing", False):
        return

    def showwarning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if is_third_party_noise(message, category, filename):
            logger.debug("%s:%s: %s: %s", filename, lineno, category.__name__, message)
            return
        previous(message, category, filename, lineno, file, line)

    showwarning._trendflow_routing = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning
    # Deprecations are ignored by default outside __main__; let them reach the debug log too.
    warnings.filterwarnings("default", category=DeprecationWarning)


def routing_installed() -> bool:
    return bool(getattr(warnings.showwarning, "_trendflow_routing", False))
