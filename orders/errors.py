from kernel.errors import DomainError


class OrderError(DomainError):
    """An order rule refused the operation."""
