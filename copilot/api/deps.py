"""What every route depends on: the app's shared parts, and the signed-in user.

Routes never take a user id from the request: the owner of every read and write is the
``Principal`` the token proves, so a request can only reach its own user's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from copilot.api.auth import Authenticator, AuthError, Principal
from copilot.api.limits import RateLimiter
from copilot.api.problems import Problem
from copilot.config import Settings
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace

bearer = HTTPBearer(auto_error=False, description="Entra ID access token (or dev:NAME).")
LOCAL_USER_HEADER = "X-Copilot-User"  # with the local admin token: which local user acts


@dataclass
class Api:
    """The long-lived parts of one API process."""

    settings: Settings
    workspace: Workspace
    runner: SkillRunner
    jobs: Any  # copilot.api.jobs.JobManager
    auth: Authenticator
    limiter: RateLimiter
    obo: Any = None  # copilot.api.obo.OnBehalfOf, when Graph is configured
    run_pool: Any = None  # concurrent.futures.ThreadPoolExecutor for skill runs


# The dependencies are coroutines: FastAPI runs a plain function in a worker thread, and
# under 20 streaming runs those hops (one per dependency and request) queued behind the
# runs' threads for the GIL. Authentication goes to a thread only when it may wait on I/O
# (``Authenticator.may_wait``: a signing key to fetch, a database lookup).
async def get_api(request: Request) -> Api:
    return api_of(request)


def api_of(request: Request) -> Api:
    return request.app.state.api


async def current_user(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> Principal:
    """The caller, from a valid token; 401/403 problem otherwise (with WWW-Authenticate)."""
    header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
    if header is None and request.headers.get("authorization"):
        header = request.headers["authorization"]  # a wrong scheme still gets a precise error
    auth = api_of(request).auth
    who = partial(
        auth.authenticate,
        header,
        local_user=request.headers.get(LOCAL_USER_HEADER),
        peer=request.client.host if request.client else None,
        host=request.headers.get("host"),
    )
    try:
        return await run_in_threadpool(who) if auth.may_wait(header) else who()
    except AuthError as exc:
        raise Problem(
            exc.status,
            exc.message,
            headers={"WWW-Authenticate": exc.www_authenticate},
            code=exc.code,
        ) from None


async def rate_limited(
    request: Request, user: Annotated[Principal, Depends(current_user)]
) -> Principal:
    """The caller, after taking one request from their per-minute allowance (this
    machine's own CLI has none: it is the account that runs the service)."""
    if not user.machine:
        api_of(request).limiter.check(user.user_id)
    return user


ApiDep = Annotated[Api, Depends(get_api)]
UserDep = Annotated[Principal, Depends(current_user)]
LimitedUserDep = Annotated[Principal, Depends(rate_limited)]
