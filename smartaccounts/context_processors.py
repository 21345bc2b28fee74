from django.http import HttpRequest

from .access import can_manage_accounts
from .actors import Actor


def portal(request: HttpRequest) -> dict[str, bool]:
    """`can_manage`: whether the signed-in user may change the accounts it sees (servers,
    capacity). Pages show or hide their forms by it; the services enforce it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_manage": False}
    return {"can_manage": can_manage_accounts(Actor.for_user(user))}
