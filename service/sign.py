"""``python -m service.sign PATH [--ttl SECONDS]``: print a signed URL for an edge node.

Reads the signing keys from the environment like the gateway (``ACCELIR_SIGNING_KEYS``,
``ACCELIR_SIGNING_SALTS``) and prefixes ``ACCELIR_PUBLIC_BASE_URL``. The gateway offers the same
as ``POST /v1/signed-urls``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.settings import get_settings
from service.signing import sign_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.sign", description=__doc__)
    parser.add_argument("path", help="e.g. /v1/images/<id>/container")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until the URL expires")
    args = parser.parse_args(argv)
    settings = get_settings()
    if not 1 <= args.ttl <= settings.signed_url_max_ttl_s:
        parser.error(f"--ttl must lie in 1..{settings.signed_url_max_ttl_s}")
    try:
        signed = sign_path(args.path, settings.signing_pairs, args.ttl)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(settings.public_base_url.rstrip("/") + signed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
