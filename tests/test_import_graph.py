"""The import graph of bert_tf/, tools/ and benchmarks/: no cycles, no import from a lower floor to
a higher one, and bert_tf's own modules imported at module top.

Read from the source with ast (nothing is imported), counting imports at module top and inside
functions alike: a deferred import still ties the two modules together. Deferring stays for
optional or heavy third-party packages (keras_hub, matplotlib, tensorflow_datasets, the TFLite
converter, ...), each with its reason beside it in the code.
"""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Floors, lowest first: a module may import its own floor or any lower one. The most specific
# prefix decides a module's floor.
FLOORS = [
    # Leaves every layer uses: errors, file I/O, presets, tokenizers, the strategy, the run log; text
    # reading (the vocab builder reads corpora with it) and progress lines (data conversion and
    # training report with them) import nothing of bert_tf's but errors.
    ("bert_tf.errors", "bert_tf.gfile", "bert_tf.fileio", "bert_tf.config", "bert_tf.tokenization", "bert_tf.distribute",
     "bert_tf.log_file", "bert_tf.data.text_files", "bert_tf.training.progress"),
    ("bert_tf.data",),  # raw files -> examples -> records -> tf.data
    ("bert_tf.modeling",),  # models read data's conventions (feature names, IGNORE_LABEL), never the reverse
    ("bert_tf.training",),  # optimizers, the loop, metrics: train any model on any records
    ("bert_tf.tasks",),  # one class per fine-tuning task: its files, head, scores, predictions and signature
    ("bert_tf.run_metadata",),  # what a run recorded: its model files and optimizer settings
    ("bert_tf.export", "bert_tf.predictor"),  # serving exports and running them
    ("bert_tf.flags", "bert_tf.flag_help", "bert_tf.flag_ranges"),  # the scripts' flag groups (training's schedule names, distribution)
    ("bert_tf.jobs",),  # one job per script
    ("bert_tf.cli", "bert_tf"),  # script plumbing; the package root's lazy bert_tf.Predictor
    ("tools", "benchmarks"),  # the checkout's scripts and the benchmarks they run (not installed with bert_tf)
]

# Upward imports still to be undone, each failing the test once it is gone so the list stays true.
KNOWN_UPWARD = set()
# bert_tf modules imported inside a function, and why. benchmarks/, outside the library, is left
# out: it defers loading its peers (Hugging Face, Model Garden) and the bert_tf modules of one run.
DEFERRED = {
    # bert_tf.Predictor on first use: `import bert_tf` must not load TensorFlow (bert_tf/__init__.py).
    ("bert_tf", "bert_tf.predictor"),
}


def floor_of(module):
    best = None
    for level, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (level, prefix)
    assert best is not None, f"{module} is on no floor: add it to FLOORS"
    return best[0]


def module_files(repo=REPO):
    """{dotted module name: path} for bert_tf/, tools/ and benchmarks/."""
    modules = {}
    for top in ("bert_tf", "tools", "benchmarks"):
        for directory, _, files in os.walk(os.path.join(repo, top)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    dotted = os.path.relpath(path, repo)[:-3].replace(os.sep, ".")
                    modules[dotted.removesuffix(".__init__")] = path
    return modules


def imports_of(module, source, modules, in_functions_only=False):
    """Modules of ``modules`` that ``source`` (module ``module``) imports, at any depth in the file
    (with ``in_functions_only``, those imported inside a function)."""
    is_package = module in modules and modules[module].endswith("__init__.py")
    found = set()
    tree = ast.parse(source)
    nodes = ast.walk(tree)
    if in_functions_only:
        nodes = (node for function in ast.walk(tree) if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                 for node in ast.walk(function))
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:  # `import a.b.c` of a non-module attribute path
                name = name.rpartition(".")[0]
            # A module's own packages are loaded before it anyway.
            if name and name != module and not module.startswith(name + "."):
                found.add(name)
    return found


def graph(modules, in_functions_only=False):
    edges = {}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            edges[module] = imports_of(module, f.read(), modules, in_functions_only)
    return edges


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan), each as a sorted tuple."""
    index, low, stack, on_stack, found = {}, {}, [], set(), set()

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(tuple(sorted(component)))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def upward(edges):
    return {(source, target) for source, targets in edges.items() for target in targets
            if floor_of(target) > floor_of(source)}


def test_no_import_cycles():
    assert cycles(graph(module_files())) == set()


def test_no_import_from_a_lower_floor_to_a_higher_one():
    assert upward(graph(module_files())) == KNOWN_UPWARD


def test_bert_tf_modules_are_imported_at_module_top():
    deferred = graph(module_files(), in_functions_only=True)
    found = {(source, target) for source, targets in deferred.items() for target in targets
             if source.startswith("bert_tf")}
    assert found == DEFERRED


def test_the_checks_catch_a_cycle_and_an_upward_import(tmp_path):
    files = {"bert_tf/__init__.py": "",
             "bert_tf/errors.py": "",
             "bert_tf/training/__init__.py": "",
             "bert_tf/training/optimization.py": "from bert_tf.errors import UserError\n"
                                                 "def make():\n    from bert_tf.training.lamb import Lamb\n",
             "bert_tf/training/lamb.py": "from bert_tf.training import optimization\n",
             "bert_tf/data/__init__.py": "",
             "bert_tf/data/tagging.py": "from . import records\nfrom ..training.lamb import Lamb\n",
             "bert_tf/data/records.py": "import bert_tf.errors\n",
             "tools/run.py": "import bert_tf\nfrom bert_tf.data import tagging\n"}
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    edges = graph(module_files(str(tmp_path)))
    assert edges["bert_tf.data.tagging"] == {"bert_tf.data.records", "bert_tf.training.lamb"}
    assert edges["bert_tf.data.records"] == {"bert_tf.errors"}
    assert edges["tools.run"] == {"bert_tf", "bert_tf.data.tagging"}
    assert cycles(edges) == {("bert_tf.training.lamb", "bert_tf.training.optimization")}
    assert upward(edges) == {("bert_tf.data.tagging", "bert_tf.training.lamb")}
    deferred = graph(module_files(str(tmp_path)), in_functions_only=True)
    assert {source: targets for source, targets in deferred.items() if targets} == {
        "bert_tf.training.optimization": {"bert_tf.training.lamb"}}
