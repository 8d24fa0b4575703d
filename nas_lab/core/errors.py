"""The one exception type for bad user input.

Anything a researcher can get wrong (an unknown name, a bad value, a missing or
corrupt file, an impossible combination) raises ``UserError`` with one sentence
that names what was wrong and what is valid. The CLI prints that sentence and
exits with status 2; everything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input from the user: the message is shown as is, exit status 2."""


def shorten(value, limit: int = 80) -> str:
    """``repr`` of a user's value for an error message, cut to ``limit`` characters with an ellipsis."""
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"
