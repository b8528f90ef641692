"""``/v1/signed-urls``: mint an expiring, HMAC-signed URL for an edge node."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import ClientDep, SettingsDep
from service.problems import ProblemError, problem_responses
from service.schemas import SignedUrl, SignRequest
from service.signing import sign_path

router = APIRouter(prefix="/v1/signed-urls", tags=["signing"])


@router.post(
    "",
    response_model=SignedUrl,
    summary="Sign a container, manifest or block path",
    responses=problem_responses(401, 415, 422),
)
async def mint(body: SignRequest, _: ClientDep, settings: SettingsDep) -> SignedUrl:
    if not settings.signing_pairs:
        raise ProblemError(
            503, "service-unavailable", "no signing key is configured (ACCELIR_SIGNING_KEYS)"
        )
    if body.ttl_s > settings.signed_url_max_ttl_s:
        raise ProblemError(
            422,
            "invalid-request",
            f"ttl_s must be at most {settings.signed_url_max_ttl_s}",
            reason="bad_input",
        )
    signed = sign_path(body.path, settings.signing_pairs, body.ttl_s)
    expires = int(signed.split("expires=")[1].split("&")[0])
    return SignedUrl(
        url=settings.public_base_url.rstrip("/") + signed, path=signed, expires=expires
    )
