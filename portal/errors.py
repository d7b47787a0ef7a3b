class ActionRefused(Exception):
    """A service refused a change: the message is written for the person who asked for it and
    is shown to them as it is. Nothing was written."""

    def __init__(self, message: str, *, code: str = "refused") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
