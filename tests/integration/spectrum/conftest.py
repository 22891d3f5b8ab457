"""Library modules' child loggers take the service name when first imported: the template's
POWERTOOLS_SERVICE_NAME must be set before the test modules import callrec, as it is in Lambda."""

from __future__ import annotations

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "spectrum")
