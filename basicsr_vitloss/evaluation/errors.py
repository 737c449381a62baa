"""The evaluation's error type, its warnings and how names are listed in a message."""
import sys

SHOWN = 5  # names listed per problem in an error message


class EvaluateError(ValueError):
    """A problem with the user's inputs: printed as ``evaluate: error: ...``, exit status 2."""


def warn(message):
    print(f'evaluate: warning: {message}', file=sys.stderr)


def listing(names):
    """``a, b, c`` of at most SHOWN names, then ``(and N more)``; ``none`` for no names."""
    names = list(names)
    more = f' (and {len(names) - SHOWN} more)' if len(names) > SHOWN else ''
    return ', '.join(names[:SHOWN]) + more if names else 'none'
