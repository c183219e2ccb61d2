"""One exception hierarchy for every service; mapped to HTTP once, in common.http."""


class ServiceError(Exception):
    """Base of all errors a service raises on purpose. `status` is the HTTP status it maps to."""

    status = 500
    default_message = "internal error"

    def __init__(self, message: str | None = None, *, headers: dict | None = None, body: dict | None = None):
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.headers = headers or {}
        self.body = body  # extra JSON fields merged into the error body


class BadRequest(ServiceError):
    status = 400
    default_message = "bad request"


class Unauthorized(ServiceError):
    status = 401
    default_message = "unauthorized"


class Forbidden(ServiceError):
    status = 403
    default_message = "forbidden"


class NotFound(ServiceError):
    status = 404
    default_message = "not found"


class MethodNotAllowed(ServiceError):
    status = 405
    default_message = "method not allowed"


class Conflict(ServiceError):
    status = 409
    default_message = "conflict"


class PreconditionFailed(ServiceError):
    status = 412
    default_message = "precondition failed"


class TooLarge(ServiceError):
    status = 413
    default_message = "request body too large"


class UnsupportedMediaType(ServiceError):
    status = 415
    default_message = "unsupported media type"


class Unprocessable(ServiceError):
    status = 422
    default_message = "unprocessable entity"


class TooManyRequests(ServiceError):
    status = 429
    default_message = "too many requests"


class Unavailable(ServiceError):
    status = 503
    default_message = "service unavailable"


class ConfigError(Exception):
    """The configuration cannot be used; raised at startup, never mapped to a response."""
