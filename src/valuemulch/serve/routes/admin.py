"""``/v1/admin/*``: promote a model, reload the promoted one, replace the tier-2 policy (admin key required)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from valuemulch.bounds import OrgPolicy
from valuemulch.errors import ConfigError
from valuemulch.serve._deployment import Deployment, load_deployment
from valuemulch.serve._middleware import ServiceError
from valuemulch.serve._registry import Registry
from valuemulch.serve.deps import AdminDep, LiveDep, SettingsDep
from valuemulch.serve.schemas import PolicyIn, PromoteIn

router = APIRouter(dependencies=[AdminDep], responses={401: {"description": "no key"}, 403: {"description": "wrong key"}})


def _served(d: Deployment) -> dict[str, Any]:
    return {"model_id": d.model_id, "certified": d.certified, "certificate_id": d.certificate_id}


@router.post("/v1/admin/promote")
def promote(payload: PromoteIn, settings: SettingsDep, live: LiveDep) -> dict[str, Any]:
    """Promote a registered model and serve it from now on."""
    try:
        with live.lock:  # load first: the registry changes only once the new model is known to serve
            fresh = load_deployment(settings, payload.model_id, live.current.org_policy)
            Registry(settings.registry).promote(
                payload.model_id,
                allow_uncertified=settings.serve.allow_uncertified,
                trusted=settings.serve.trusted_keys,
                key_dir=settings.keys,
            )
            live.swap(fresh)
    except ConfigError as err:
        raise ServiceError(409, "cannot_promote", str(err), "model_id") from None
    return _served(fresh)


@router.post("/v1/admin/reload")
def reload_route(settings: SettingsDep, live: LiveDep) -> dict[str, Any]:
    """Load the registry's promoted model again (after `valuemulch registry promote`)."""
    try:
        with live.lock:
            fresh = live.swap(load_deployment(settings, None, live.current.org_policy))
    except ConfigError as err:
        raise ServiceError(409, "cannot_reload", str(err)) from None
    return _served(fresh)


@router.put("/v1/admin/policy")
def replace_policy(payload: PolicyIn, live: LiveDep) -> dict[str, Any]:
    """Replace the tier-2 policy (validated first; the old one stays on any error)."""
    try:
        policy = OrgPolicy.from_dict(payload.policy, where="policy")
    except ConfigError as err:
        raise ServiceError(422, "invalid_policy", str(err), "policy") from None
    with live.lock:
        live.swap(live.current.with_policy(policy))
    return {"policy": payload.policy}
