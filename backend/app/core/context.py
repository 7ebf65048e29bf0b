"""Per-request context shared by middleware, handlers and logs.

The middleware stores one mutable `RequestContext` in a context variable at the start
of a request; dependencies fill in `user_id`. A mutable holder (rather than setting
context variables deeper down) stays visible to the middleware after the route
returns, whatever copies of the context the framework made on the way.
"""

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(slots=True)
class RequestContext:
    request_id: str
    user_id: str | None = None


_current: ContextVar[RequestContext | None] = ContextVar("request_context", default=None)


def set_context(ctx: RequestContext) -> Token[RequestContext | None]:
    return _current.set(ctx)


def reset_context(token: Token[RequestContext | None]) -> None:
    """Forget the request once it is answered, so later log lines do not inherit it."""
    _current.reset(token)


def get_context() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str | None:
    ctx = _current.get()
    return ctx.request_id if ctx else None


def set_user_id(user_id: str) -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.user_id = user_id
