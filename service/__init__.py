"""The AccelIR networked service: an HTTP gateway in front of Redis Streams and model workers.

Subpackages and modules (one job each):

- ``settings`` — configuration from the environment (pydantic-settings), built by factories;
- ``keys`` — every Redis key and stream name, in one place (shared with ``worker``);
- ``jobs`` — job states, their order, the job record and the atomic transition script;
- ``blobs`` — the blob store (local filesystem or S3-compatible) for uploads, containers, outputs;
- ``images`` — untrusted image handling: magic-byte sniffing and header limits before decoding;
- ``signing`` — HMAC-signed, expiring URLs for edge nodes (``python -m service.sign`` mints one);
- ``app`` — ``create_app(settings)``, the FastAPI gateway; ``routes/`` holds one router per area;
- ``run`` — ``python -m service.run``: a local Redis, the gateway and one worker of each kind.

Importing this package imports nothing heavy: the workers import ``keys``, ``jobs``, ``blobs`` and
``images`` without FastAPI.
"""
