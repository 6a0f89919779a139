"""The first examples of a shipped data file, written as a file of the same format (smaller benchmark runs)."""
from bert_tf import fileio, gfile


def first_examples(path, count, target):
    """The first ``count`` sentences of a CoNLL file (blank-line separated) or rows of a TSV (header
    kept) of ``path``, written to ``target`` -> ``target``."""
    with gfile.GFile(path) as f:
        text = f.read()
    if path.endswith(".conll"):
        kept = "\n\n".join(text.strip("\n").split("\n\n")[:count]) + "\n"
    else:
        kept = "".join(text.splitlines(keepends=True)[:count + 1])
    fileio.write_text(target, kept)
    return target
