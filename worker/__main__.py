"""Entry point: ``python -m worker encoder|decoder [--burst]`` (see ``worker.main``)."""

from worker.main import main

raise SystemExit(main())
