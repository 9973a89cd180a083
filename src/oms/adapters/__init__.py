"""Everything that talks to the outside world."""


class ProviderUnavailable(Exception):
    """A PSP or carrier could not be reached or failed on its side: nothing is known to have
    happened, and the same call (with the same idempotency key) is tried again later."""
