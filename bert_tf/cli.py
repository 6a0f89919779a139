"""Entry-point plumbing shared by every script in tools/: absl app, one-line errors."""
import sys

from absl import app, logging

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
            from bert_tf import fileio

            message = fileio.storage_error_message(error)
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr, flush=True)
            sys.exit(EXIT_USER_ERROR)

    return wrapped


def run(main):
    """Runs ``main`` under absl, turning ``UserError`` into a one-line message and exit code 2."""
    logging.set_verbosity(logging.WARNING)
    app.run(_guarded(main))
