from licensing_portal.errors import DomainError


class OrderError(DomainError):
    """An order rule refused the operation."""
