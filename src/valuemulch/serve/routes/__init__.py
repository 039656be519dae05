"""One `APIRouter` per resource: a module-level ``router``, or ``build_router(models)`` where request bodies
are validated with the limits-bound models of `valuemulch.serve.schemas.request_models`."""
