"""The tools/ scripts as console commands of an installed bert_tf (setup.py ships this folder as
``bert_tf_tools``): ``bert-tf-classifier ...`` runs tools/run_classifier.py exactly as
``python tools/run_classifier.py ...`` does, so each script stays the one definition of its command.
"""
import runpy

# command -> script. demo.py and benchmark.py are left out: they read the checkout's data/ and
# compare against peers installed only for development, so they stay `python tools/X.py`.
COMMANDS = {
    "bert-tf-build-vocab": "build_vocab",
    "bert-tf-classifier": "run_classifier",
    "bert-tf-convert-checkpoint": "convert_checkpoint",
    "bert-tf-create-pretraining-data": "create_pretraining_data",
    "bert-tf-export": "export_savedmodel",
    "bert-tf-inspect-data": "inspect_data",
    "bert-tf-multiple-choice": "run_multiple_choice",
    "bert-tf-pretraining": "run_pretraining",
    "bert-tf-serving-client": "serving_client",
    "bert-tf-squad": "run_squad",
    "bert-tf-tagger": "run_tagger",
}


def run_script(script):
    """Runs the script as ``__main__`` (its flags defined at import, its docstring the --help text)."""
    runpy.run_module(f"{__name__}.{script}", run_name="__main__", alter_sys=True)


def _launcher(script):
    def launch():
        run_script(script)

    launch.__doc__ = f"The console command of tools/{script}.py."
    return launch


# One attribute per command (bert-tf-classifier -> bert_tf_classifier), the targets of setup.py's
# console_scripts; their names cannot collide with the script modules'.
for _command, _script in COMMANDS.items():
    globals()[_command.replace("-", "_")] = _launcher(_script)
