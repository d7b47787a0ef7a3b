from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from retailers.access import SESSION_STORE_KEY, choose_membership, store_memberships_for


def store_nav(request: HttpRequest) -> dict:
    """The top bar's store switcher and links on every page, and which pages the account menu
    links to. Lazy: a fragment that does not show the top bar (the board poll) costs no query."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def memberships() -> list:
        return list(store_memberships_for(user))

    def current_store():
        chosen = choose_membership(nav_memberships, request.session.get(SESSION_STORE_KEY))
        return chosen.store if chosen else None

    def is_driver() -> bool:
        from drivers.models import Driver

        return Driver.objects.filter(user=user).exists()

    nav_memberships = SimpleLazyObject(memberships)
    return {
        "store_memberships": nav_memberships,
        "current_store": SimpleLazyObject(current_store),
        # The account menu's links to a person's other pages (someone who works in a store and drives).
        "is_driver": SimpleLazyObject(is_driver),
    }
