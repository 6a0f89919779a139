"""The one exception type for mistakes a user can fix (bad flag, missing file, malformed row)."""
import re


class UserError(Exception):
    """An expected error: its message is one line naming the thing and the fix.

    Scripts print it without a traceback and exit non-zero (see ``bert_tf.cli``); anything
    else that escapes is a bug and keeps its traceback.
    """


class ParameterError(UserError):
    """A UserError about a library call's arguments, worded with their names (``log_steps=0 must be
    positive``). ``parameters`` lists the names the message uses, so that a script can name its
    flags instead: ``error.as_flags()`` reads ``--log_steps=0 must be positive``.
    """

    def __init__(self, message, *parameters):
        super().__init__(message)
        self.parameters = parameters

    def as_flags(self, flag_names=None):
        """The same error naming each parameter ``p`` as the flag ``--flag_names.get(p, p)``."""
        return UserError(in_flag_terms(str(self), self.parameters, flag_names))


def in_flag_terms(text, parameters, flag_names=None):
    """``text`` with each of ``parameters`` replaced by its flag, ``--name``: whole words only, never
    inside a path (``/tmp/log_steps/x``) or a longer name."""
    for name in parameters:
        flag = "--" + (flag_names or {}).get(name, name)
        text = re.sub(rf"(?<![\w/.-]){re.escape(name)}(?![\w/-])", lambda _: flag, text)
    return text


def warn(message):
    """A run that goes on but probably not as meant: one ``warning: ...`` line on stderr."""
    import sys

    print(f"warning: {message}", file=sys.stderr, flush=True)
