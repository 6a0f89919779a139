"""Paths of any TensorFlow filesystem (local, ``gs://``, ``ram://``...) and atomic outputs.

Every path a user passes is read and written through ``tf.io.gfile`` (``bert_tf.gfile``: the same
calls on os for local paths, so local-only scripts need not import TensorFlow). Libraries that open only
local files (Hugging Face ``save_pretrained``/``from_pretrained``, h5py) get a local stand-in
from the two staging helpers here, ``local_copy`` (reading) and ``staged_output_dir`` (writing),
which are no-ops for local paths.

Every file or directory we produce appears complete or not at all. On a local disk writers work
on a temporary sibling and rename it into place. On object stores, where a directory "rename"
copies object by object, a directory is written under a temporary prefix and then published
with its marker file (the file its readers check first: ``saved_model.pb``, ``bert_tf.json``)
copied last, so a reader that finds the marker finds every other file too (docs/distributed.md,
"Object stores").
"""
import contextlib
import errno
import io
import json
import os
import re
import sys
import tempfile
import uuid

from bert_tf import gfile
from bert_tf.errors import UserError
from bert_tf.gfile import is_local  # noqa: F401  (callers read it as fileio.is_local)


def _temp_sibling(path):
    return f"{path}.partial-{uuid.uuid4().hex[:8]}"


def _remove(path):
    try:
        if gfile.isdir(path):
            gfile.rmtree(path)
        elif gfile.exists(path):
            gfile.remove(path)
    except (FileNotFoundError,) + _tensorflow_errors("NotFoundError"):
        pass  # ram:// says "model" exists when only "model.partial-..." does


def _files_under(directory):
    """Paths relative to ``directory`` of every file below it, sorted (any filesystem)."""
    root = directory.rstrip("/") + "/"
    found = []
    for parent, _, names in gfile.walk(directory):
        prefix = parent.rstrip("/") + "/"
        # ram:// lists by bare string prefix ("assets" shows ".extra" of "assets.extra/"); such
        # phantoms do not exist when asked by their full name.
        found.extend(prefix[len(root):] + name for name in names if gfile.exists(prefix + name))
    return sorted(found)


def copy_tree(source, target, last=None):
    """Copies every file under ``source`` to the same place under ``target``; ``last`` (a relative
    path) goes after all others, so it can serve as the marker that the rest is complete."""
    files = _files_under(source)
    if last in files:
        files.remove(last)
        files.append(last)
    gfile.makedirs(target)
    for relative in files:
        destination = f"{target.rstrip('/')}/{relative}"
        gfile.makedirs(os.path.dirname(destination))
        gfile.copy(f"{source.rstrip('/')}/{relative}", destination, overwrite=True)


def _publish_directory(temp, path, marker):
    """An object store's stand-in for renaming a directory (there a rename copies object by object).

    A replaced directory loses its marker first, so from that moment readers treat it as
    incomplete; the new files follow, the marker last.
    """
    if gfile.exists(path):
        if marker and gfile.exists(f"{path}/{marker}"):
            gfile.remove(f"{path}/{marker}")
        _remove(path)
    copy_tree(temp, path, last=marker)
    _remove(temp)


@contextlib.contextmanager
def atomic_path(path, marker=None):
    """Yields a temporary path to write; on success it becomes ``path``.

    Works for a file or a directory written at the yielded path. On error the temporary output
    is removed and ``path`` is left untouched. Local paths are renamed into place. Elsewhere a
    file is renamed too (one object appears whole), and a directory is copied under ``path`` with
    ``marker``, the file its readers require (e.g. ``saved_model.pb``), written last.
    """
    parent = os.path.dirname(path)
    if parent:
        ensure_dir(parent)
    temp = _temp_sibling(path)
    try:
        yield temp
        if gfile.isdir(temp) and not is_local(path):
            _publish_directory(temp, path, marker)
        elif gfile.isdir(temp) and gfile.exists(path):
            # Directories cannot be replaced by rename; move the old one aside first.
            old = _temp_sibling(path)
            gfile.rename(path, old)
            gfile.rename(temp, path)
            _remove(old)
        else:
            gfile.rename(temp, path, overwrite=True)
    except BaseException:
        _remove(temp)
        raise


@contextlib.contextmanager
def local_copy(path):
    """Yields a local path with the content of ``path`` (a file or a directory) for libraries that
    open only local files; local paths come back as they are, others are copied to a temp dir."""
    if is_local(path):
        yield path[len("file://"):] if path.startswith("file://") else path
        return
    with tempfile.TemporaryDirectory(prefix="bert_tf_in_") as work:
        local = os.path.join(work, os.path.basename(path.rstrip("/")) or "copy")
        if gfile.isdir(path):
            copy_tree(path, local)
        else:
            gfile.copy(path, local)
        yield local


@contextlib.contextmanager
def staged_output_dir(path):
    """Yields a local directory whose files end up under ``path`` when the block succeeds; for
    libraries that write only local files. A local ``path`` is yielded itself."""
    if is_local(path):
        ensure_dir(path)
        yield path[len("file://"):] if path.startswith("file://") else path
        return
    with tempfile.TemporaryDirectory(prefix="bert_tf_out_") as work:
        yield work
        copy_tree(work, path)


_STORAGE_ERRNOS = {errno.ENOSPC: "No space left on device", errno.EFBIG: "File too large",
                   errno.EROFS: "Read-only file system", errno.EACCES: "Permission denied",
                   errno.EDQUOT: "Disk quota exceeded"}


def storage_error_message(error):
    """One line for a failed write (disk full, file-size limit, read-only or unwritable path), else None.

    Scripts print it instead of a traceback: the cause is the machine, not a bug.
    """
    text = str(error)
    reason = _STORAGE_ERRNOS.get(getattr(error, "errno", None))
    if reason is None:
        reason = next((r for r in _STORAGE_ERRNOS.values() if r.lower() in text.lower()), None)
    if reason is None or not isinstance(error, (OSError,) + _tensorflow_errors("OpError")):
        return None
    path = getattr(error, "filename", None)
    if not path:
        match = re.search(r"(?:name = |file |')?(/[^\s,;']+)", text)
        path = match.group(1) if match else "the output"
    return (f"cannot write {path} ({reason}): free disk space, fix the permissions or choose another "
            "--output_dir; checkpoints and files saved before are kept")


def _tensorflow_errors(name):
    """(tf.errors.<name>,) once TensorFlow is loaded, else (): without it no call raised one."""
    tf = sys.modules.get("tensorflow")
    return (getattr(tf.errors, name),) if tf is not None and hasattr(tf, "errors") else ()


def write_bytes(path, data):
    with atomic_path(path) as temp:
        with gfile.GFile(temp, "wb") as f:
            f.write(data)


def write_png(path, figure, dpi=100):
    """Saves a matplotlib figure as PNG at ``path`` (any filesystem): rendered in memory, since
    matplotlib writes only local files, then written atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    write_bytes(path, buffer.getvalue())


def write_text(path, text):
    write_bytes(path, text.encode("utf-8"))


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path):
    with gfile.GFile(path) as f:
        return json.load(f)


def ensure_dir(path):
    """Creates ``path`` as a directory, or fails with a clear message if a file is in the way."""
    if gfile.exists(path) and not gfile.isdir(path):
        raise UserError(f"{path} is a file, not a directory: choose another output directory")
    try:
        gfile.makedirs(path)
    except (PermissionError,) + _tensorflow_errors("PermissionDeniedError") as error:
        raise UserError(f"cannot create directory {path} ({error}): choose a writable location") from None
    except (NotADirectoryError, FileExistsError) + _tensorflow_errors("FailedPreconditionError"):
        parent = os.path.dirname(os.path.abspath(path)) if is_local(path) else os.path.dirname(path)
        while parent and not gfile.exists(parent) and parent != os.path.dirname(parent):
            parent = os.path.dirname(parent)
        raise UserError(f"cannot create directory {path}: {parent} is a file: choose a path in a directory") from None


def _comparable(path):
    path = str(path)
    if is_local(path):
        # realpath: a symlink to an input is that input.
        return os.path.realpath(path[len("file://"):] if path.startswith("file://") else path)
    return path.rstrip("/")


def _paths_of(value):
    """A flag's path, or each file its comma-separated globs match (the pattern itself when none)."""
    found = []
    for pattern in (p.strip() for p in str(value).split(",") if p.strip()):
        matched = gfile.glob(pattern) if any(c in pattern for c in "*?[") else []
        found.extend(matched or [pattern])
    return found


def check_outputs_apart(outputs, inputs=None):
    """The one check before a script writes: refuses an output ({flag: path}) equal to, inside, or
    containing any input ({flag: path or comma-separated globs}), since writing it would replace or
    delete what the run reads; an output below a regular file; and, for ``*_file`` outputs, an existing
    directory (``*_dir`` outputs: an existing file)."""
    for output_flag, output in outputs.items():
        if not output:
            continue
        flag = output_flag if output_flag.startswith("--") else f"--{output_flag}"
        is_file = flag.endswith("_file")
        if is_file and gfile.isdir(output):
            raise UserError(f"{flag} {output} is a directory, not a file: name a file (e.g. {output.rstrip('/')}/"
                            "out) or another path")
        if not is_file and gfile.exists(output) and not gfile.isdir(output):
            raise UserError(f"{flag} {output} is a file, not a directory: choose another {flag}")
        if is_local(output):
            parent = os.path.dirname(_comparable(output))
            while parent and parent != os.path.dirname(parent) and not os.path.exists(parent):
                parent = os.path.dirname(parent)
            if parent and os.path.exists(parent) and not os.path.isdir(parent):
                raise UserError(f"{flag} {output} lies under {parent}, which is a file: choose a path in a directory")
        out = _comparable(output)
        for input_flag, value in (inputs or {}).items():
            if not value:
                continue
            for path in _paths_of(value):
                source = _comparable(path)
                if out == source or source.startswith(out + "/") or out.startswith(source + "/"):
                    relation = "is" if out == source else "contains" if source.startswith(out + "/") else "is inside"
                    name = input_flag if input_flag.startswith("--") else f"--{input_flag}"
                    raise UserError(f"{flag} {output} {relation} {name} {path}: writing it would destroy the "
                                    f"input; choose another {flag}")


def check_replaceable_dir(path, marker, overwrite, flag="--output_dir", action="replace everything in it",
                          ignore=()):
    """Refuses a non-empty directory holding none of ``marker`` (a name or a tuple of names: the metadata
    files bert_tf writes into its outputs) unless ``overwrite``: it holds someone else's files. Entries
    named in ``ignore`` do not count."""
    if not gfile.exists(path):
        return
    if not gfile.isdir(path):
        raise UserError(f"{flag} {path} is a file, not a directory: choose another {flag}")
    markers = (marker,) if isinstance(marker, str) else tuple(marker)
    entries = [e for e in gfile.listdir(path) if e.rstrip("/") not in ignore]
    if overwrite or not entries or any(gfile.exists(os.path.join(path, m)) for m in markers):
        return
    raise UserError(f"{flag} {path} is a non-empty directory bert_tf did not write (no {markers[0]}): choose an empty "
                    f"or new {flag}, or pass --overwrite_output_dir to {action}")


def require_file(path, what, fix="check the path"):
    if not path:
        raise UserError(f"{what} is required: pass it as a flag")
    if not gfile.exists(path):
        raise UserError(f"{what} {path} does not exist: {fix}")
    if gfile.isdir(path):
        raise UserError(f"{what} {path} is a directory, not a file: {fix}")
    return path


def read_json_object(path, what, fields=None, fix="regenerate it"):
    """The JSON object in ``path`` (a metadata file: tokenizer config, label map, run metadata); malformed
    JSON, another top-level type, or a field of ``fields`` ({key: allowed types}) with a value of another
    type is one UserError naming the file, the key and ``fix``."""
    require_file(path, what, fix)
    try:
        with gfile.GFile(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{what} {path} is not valid JSON ({str(error).splitlines()[0]}): {fix}") from None
    if not isinstance(data, dict):
        raise UserError(f"{what} {path} must hold a JSON object, not {type(data).__name__}: {fix}")
    for key, types in (fields or {}).items():
        allowed = types if isinstance(types, tuple) else (types,)
        value = data.get(key)
        # bool is an int to isinstance; a flag-like true is no count.
        if key in data and (not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed)):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
            raise UserError(f"{what} {path}: {key!r} is {value!r}, not {names}: {fix}")
    return data


def expand_inputs(patterns, what="--input_file"):
    """Comma-separated globs -> sorted file list; an empty match is an error naming the pattern."""
    files = []
    for pattern in [p.strip() for p in str(patterns).split(",") if p.strip()]:
        matched = sorted(gfile.glob(pattern))
        if not matched:
            raise UserError(f"{what} {pattern} matches no file: check the path or glob")
        files.extend(matched)
    if not files:
        raise UserError(f"{what} is required: pass one or more files (comma-separated globs)")
    return files
