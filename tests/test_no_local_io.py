"""No module of bert_tf/, tools/ or benchmarks/ opens a path with a local-only call (the I/O rule
in docs/distributed.md).

Users pass ``gs://`` (or any TensorFlow filesystem) paths to every flag, so files are opened with
``tf.io.gfile``. This scan parses the source and fails on each call that only works on the local
disk (``open``, ``os.path.exists``, ``os.makedirs``, ``shutil``, ``glob``, ``pathlib``, numpy or
h5py file access, and the Hugging Face / matplotlib / safetensors calls that take a file name),
unless one of its arguments names the local stand-in that ``fileio.local_copy`` or
``fileio.staged_output_dir`` yields, it sits in the body of an ``if is_local(...)`` branch, or the
call is in ALLOWED below with its reason.
"""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCANNED = ("bert_tf", "tools", "benchmarks")

# Calls that touch the local disk, by dotted name as written in the source.
LOCAL_CALLS = {
    "open", "io.open", "os.open", "os.listdir", "os.scandir", "os.walk", "os.stat", "os.makedirs", "os.mkdir",
    "os.remove", "os.unlink", "os.rmdir", "os.removedirs", "os.rename", "os.renames", "os.replace", "os.chmod",
    "os.symlink", "os.link", "os.utime", "os.truncate",
    "os.path.exists", "os.path.lexists", "os.path.isfile", "os.path.isdir", "os.path.islink", "os.path.getsize",
    "os.path.getmtime", "os.path.getctime", "os.path.getatime", "os.path.samefile", "os.path.realpath",
    "glob.glob", "glob.iglob", "pathlib.Path", "Path", "h5py.File", "np.load", "np.save", "np.savez",
    "np.loadtxt", "np.savetxt", "numpy.load", "numpy.save", "safe_open", "load_file", "save_file",
    "fcntl.flock", "fcntl.lockf",
}
# Any call of these modules, and any method of these names, whatever the receiver.
LOCAL_MODULES = {"shutil"}
LOCAL_METHODS = {"savefig", "save_pretrained", "from_pretrained", "from_file", "to_csv", "read_csv"}
# The helpers whose ``as`` target is a local stand-in for a user path.
STAGING_HELPERS = {"local_copy", "staged_output_dir"}
# Names assigned one of these are in-memory files (a figure rendered to bytes), not paths.
MEMORY_FILES = {"BytesIO", "StringIO"}

# (file, function, call): why the call is fine there. Each entry must still match a call (tested).
ALLOWED = {
    # The package's own presets (configs/models/*.json next to the code), never a user path.
    ("bert_tf/config.py", "preset_names", "os.listdir"): "lists the shipped presets",
    ("bert_tf/config.py", "_resolve", "os.path.exists"): "checks a shipped preset file",
    # Benchmarks run on this machine against peers that read only local files (Hugging Face's
    # classes, TF Model Garden's data script); what they read is the shipped MiniLM, a local
    # --corpus / --work_dir for the peer, or the temp dir the benchmark itself created.
    ("benchmarks/finetune.py", "bert_tf_rate", "open"): "its own temp run's log",
    ("benchmarks/finetune.py", "_hf_recipe_model", "from_pretrained"): "the peer, on its own temp dir",
    ("benchmarks/pretraining_data.py", "run", "os.path.exists"): "the peer's local --corpus",
    ("benchmarks/pretraining_data.py", "run", "os.makedirs"): "the peer's local --work_dir",
    ("benchmarks/pretraining_data.py", "run", "open"): "the peer's local --corpus and --work_dir",
    ("benchmarks/serving.py", "run", "from_pretrained"): "the peer, on a local --model_dir",
    # The demo's own outputs inside the repository (demo_output/) and the repository's files.
    ("tools/demo.py", "main", "os.path.isdir"): "demo_output/",
    ("tools/demo.py", "main", "shutil.rmtree"): "demo_output/",
    ("tools/demo.py", "main", "os.makedirs"): "demo_output/",
    ("tools/demo.py", "pretrain_demo", "os.path.exists"): "the repository's tools and flagfile",
    ("tools/demo.py", "zh_demo", "open"): "demo_output/",
    ("tools/demo.py", "zh_demo", "os.listdir"): "demo_output/",
    ("benchmarks/quality_recipes.py", "run_bert_tf", "shutil.rmtree"): "its own temp run dir",
    ("benchmarks/quality.py", "run", "shutil.rmtree"): "its own temp work dir",
    ("benchmarks/quality_recipes.py", "run_plain", "from_pretrained"): "the peer, on its own temp dir",
    # The installed bert_tf source itself: its git checkout and its benchmark modules' docstrings.
    ("bert_tf/run_metadata.py", "git_commit", "os.path.realpath"): "this source's own checkout",
    ("tools/benchmark.py", "_summaries", "open"): "the benchmark modules' source files",
    # Exclusive creation (O_EXCL) exists only on a local disk; other filesystems take gfile there.
    ("bert_tf/training/run_lock.py", "_create_exclusive", "os.open"): "O_EXCL lock on a local --output_dir",
}


def dotted(node):
    """'os.path.exists' for the callee ``os.path.exists``; None for calls on expressions."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def local_call_name(call):
    """The reported name when ``call`` is local-only, else None."""
    name = dotted(call.func)
    if name in LOCAL_CALLS:
        return name
    if name and name.split(".")[0] in LOCAL_MODULES:
        return name
    if isinstance(call.func, ast.Attribute) and call.func.attr in LOCAL_METHODS:
        return call.func.attr
    return None


def staged_names(function):
    """Names in ``function`` bound by ``with [fileio.]local_copy(...)/staged_output_dir(...) as name``
    or assigned an in-memory file (``buffer = io.BytesIO()``)."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            maker = dotted(node.value.func)
            if maker and maker.split(".")[-1] in MEMORY_FILES:
                names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        if isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                helper = dotted(item.context_expr.func) if isinstance(item.context_expr, ast.Call) else None
                if helper and helper.split(".")[-1] in STAGING_HELPERS and isinstance(item.optional_vars, ast.Name):
                    names.add(item.optional_vars.id)
    return names


def uses_staged(call, staged):
    arguments = list(call.args) + [keyword.value for keyword in call.keywords]
    return any(isinstance(node, ast.Name) and node.id in staged for arg in arguments for node in ast.walk(arg))


def scan_source(source, filename="<sample>"):
    """[(function, call name, line)] of local-only calls not fed by a staging helper."""
    tree = ast.parse(source, filename)
    findings = []

    def visit(node, function, staged, guarded=False):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function, staged = node.name, staged | staged_names(node)
        if isinstance(node, ast.Call):
            name = local_call_name(node)
            if name and not guarded and not uses_staged(node, staged):
                findings.append((function, name, node.lineno))
        if isinstance(node, ast.If) and is_local_test(node.test):
            visit(node.test, function, staged, guarded)
            for child in node.body:
                visit(child, function, staged, True)
            for child in node.orelse:
                visit(child, function, staged, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, function, staged, guarded)

    visit(tree, "<module>", set())
    return findings


def is_local_test(test):
    """``if [fileio.]is_local(...)``: its body handles paths of the local disk only."""
    return isinstance(test, ast.Call) and (dotted(test.func) or "").split(".")[-1] == "is_local"


def scan_repo():
    """{(file, function, call): [lines]} over every module of SCANNED."""
    found = {}
    for top in SCANNED:
        for parent, _, names in os.walk(os.path.join(REPO, top)):
            for name in sorted(n for n in names if n.endswith(".py")):
                path = os.path.join(parent, name)
                relative = os.path.relpath(path, REPO)
                with open(path, encoding="utf-8") as f:
                    for function, call, line in scan_source(f.read(), relative):
                        found.setdefault((relative, function, call), []).append(line)
    return found


@pytest.fixture(scope="module")
def repo_findings():
    return scan_repo()


def test_no_local_only_io_on_user_paths(repo_findings):
    offending = [f"{path}:{lines[0]} {function}() calls {call}"
                 for (path, function, call), lines in sorted(repo_findings.items()) if (path, function, call)
                 not in ALLOWED]
    assert not offending, ("local-only file access (use tf.io.gfile, or fileio.local_copy / "
                           "fileio.staged_output_dir for libraries that need local files):\n" + "\n".join(offending))


def test_every_allowance_is_still_needed(repo_findings):
    stale = sorted(set(ALLOWED) - set(repo_findings))
    assert not stale, f"ALLOWED entries that match no call any more (remove them): {stale}"


def test_scanner_catches_local_calls_in_a_job_module():
    sample = '''
import os, shutil
import numpy as np
from bert_tf import fileio

def run(flags):
    with open(os.path.join(flags.output_dir, "results.txt"), "w") as f:
        f.write("x")
    if not os.path.exists(flags.init_checkpoint):
        os.makedirs(flags.output_dir)
    shutil.copy(flags.vocab_file, flags.output_dir)
    figure.savefig(flags.output_dir + "/cm.png")
    model.save_pretrained(flags.output_dir)
    np.load(flags.input_file)

def fine(flags):
    with fileio.local_copy(flags.init_checkpoint) as local:
        model = Model.from_pretrained(local)
    with fileio.staged_output_dir(flags.output_dir) as staged:
        model.save_pretrained(os.path.join(staged, "hf"))
    with tf.io.gfile.GFile(flags.output_dir) as f:
        f.read()
    if fileio.is_local(flags.output_dir):
        os.path.realpath(flags.output_dir)
    else:
        os.path.realpath(flags.output_dir)
'''
    assert scan_source(sample) == [
        ("run", "open", 7), ("run", "os.path.exists", 9), ("run", "os.makedirs", 10), ("run", "shutil.copy", 11),
        ("run", "savefig", 12), ("run", "save_pretrained", 13), ("run", "np.load", 14),
        ("fine", "os.path.realpath", 26)]


def test_a_stand_in_from_another_function_does_not_count():
    sample = '''
def first(path):
    with fileio.local_copy(path) as local:
        pass

def second(local):
    return open(local)
'''
    assert scan_source(sample) == [("second", "open", 7)]
