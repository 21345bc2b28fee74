from kernel.errors import DomainError


class AccountError(DomainError):
    """A Smart Account, organization or API-key rule refused the operation."""
