"""The one exception type commands raise for failures the user can fix."""


class CommandError(Exception):
    """Printed as `error: <message>` with exit status 1, never as a traceback."""
