"""The one exception type for mistakes a user can fix (bad flag, missing file, malformed row)."""


class UserError(Exception):
    """An expected error: its message is one line naming the thing and the fix.

    Scripts print it without a traceback and exit non-zero (see ``bert_tf.cli``); anything
    else that escapes is a bug and keeps its traceback.
    """


def warn(message):
    """A run that goes on but probably not as meant: one ``warning: ...`` line on stderr."""
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)
