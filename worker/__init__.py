"""AccelIR workers: consumers of the Redis streams that run the encoder and the restorer.

- ``settings`` — ``WorkerConfig`` (environment) and one ``WorkerSettings`` per kind;
- ``consumer`` — the at-least-once stream loop (pending first, reclaim, retries, dead letters);
- ``leases`` — per-job locks with TTLs, extended by the heartbeat;
- ``encoder`` / ``decoder`` — the handlers and their start-up hooks (models loaded once);
- ``main`` — ``python -m worker encoder|decoder [--burst]``.
"""
