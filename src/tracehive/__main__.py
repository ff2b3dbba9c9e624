from __future__ import annotations

from tracehive.cli import main

raise SystemExit(main())
