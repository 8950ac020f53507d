"""``python -m llenergymeasure.harness``: see `llenergymeasure.harness.entrypoint`."""

from llenergymeasure.harness.entrypoint import main

raise SystemExit(main())
