"""Entry-point plumbing shared by every script in tools/: absl app, one-line errors."""
import sys

from absl import app, logging

from bert_tf import fileio, log_file
from bert_tf import flag_help, flag_ranges
from bert_tf.errors import UserError

EXIT_USER_ERROR = 2


def _guarded(main):
    def wrapped(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected positional arguments {argv[1:]}: every input is a --flag")
        try:
            return main(argv)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)
        except Exception as error:  # noqa: BLE001  (only storage failures are answered; the rest re-raise)
            message = fileio.storage_error_message(error)
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapped


def _parse_flags(argv):
    """absl's parsing, except that a rejected flag value (out of range, wrong type) is one
    ``error:`` line with exit code 2 like every other expected error."""
    from absl import flags as absl_flags

    try:
        return absl_flags.FLAGS(argv)
    except absl_flags.IllegalFlagValueError as error:
        print(f"error: {flag_ranges.flag_error_line(error)}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USER_ERROR)
    except absl_flags.Error:
        return app.parse_flags_with_usage(argv)


HELP_ARGS = ("--help", "-help", "-h", "--helpshort", "-?")


def print_help(doc=None, fv=None):
    """The script's docstring and its own flags, grouped, with defaults (bert_tf.flags.help_text)."""
    from absl import flags as absl_flags

    doc = doc if doc is not None else getattr(sys.modules.get("__main__"), "__doc__", None)
    print(flag_help.help_text(fv or absl_flags.FLAGS, doc))


def run(main, doc=None):
    """Runs ``main`` under absl, turning ``UserError`` into a one-line message and exit code 2.

    ``--help`` prints ``doc`` (default: the script's docstring) and the script's own flags by group.
    """
    log_file.define_flag()
    if any(arg in HELP_ARGS for arg in sys.argv[1:]):
        print_help(doc)
        sys.exit(0)
    from absl import flags as absl_flags

    flag_ranges.check_ranges(absl_flags.FLAGS)
    logging.set_verbosity(logging.WARNING)
    app.run(log_file.mirroring(_guarded(main)), flags_parser=_parse_flags)
