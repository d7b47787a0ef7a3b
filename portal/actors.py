from django.contrib.auth.models import AbstractBaseUser


def actor_label_for(user: AbstractBaseUser | None, fallback: str = "system") -> str:
    """Who acted, as event timelines show it: the person's name, else their username."""
    if user is None:
        return fallback
    return user.get_full_name() or user.get_username()
