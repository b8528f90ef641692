"""How a job can end other than well: permanent errors fail the job at once; anything else is
retried with back-off up to ``max_tries`` deliveries, then dead-lettered."""

from __future__ import annotations


class PermanentJobError(Exception):
    """Retrying cannot help (bad input, missing weights, unsupported target): fail the job now."""

    def __init__(self, error_type: str, detail: str) -> None:
        super().__init__(detail)
        self.error_type, self.detail = error_type, detail


class JobTimeout(Exception):
    """The job ran past ``job_timeout_s`` (retried like any transient error)."""


class HandBack(BaseException):
    """Draining ran out of grace: give the job back to the queue unfinished (not an error)."""


class LostLease(Exception):
    """The job's lock expired and may now be held by another worker."""
