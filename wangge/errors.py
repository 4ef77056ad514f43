"""Errors a caller can fix, free of any transport: the HTTP entrypoint
(``wangge.http``) answers them as JSON with their status, the bus as dead letters."""


class ApiError(Exception):
    """An error the caller can fix. Domain modules subclass it with their own
    ``http_status`` and ``error_code`` (and ``fields`` or ``details``); the
    gateway answers them all the same way and nameko logs them as expected."""

    http_status = 400
    error_code = "bad_request"
    headers = None  # extra response headers (WWW-Authenticate on a 401)

    def __init__(self, message, fields=None):
        super().__init__(message)
        self.message = message
        self.fields = fields


class NotFound(ApiError):
    http_status = 404
    error_code = "not_found"
