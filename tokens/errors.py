from kernel.errors import DomainError


class TokenError(DomainError):
    """A server, capacity or token rule refused the operation."""
