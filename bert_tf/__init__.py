"""bert_tf: BERT pretraining, fine-tuning, distribution and serving export on TensorFlow.

Importing this package first is what makes the rest work: Hugging Face's TF BERT classes are
built on tf-keras (Keras 2), and TensorFlow binds ``tf.keras`` to Keras 2 only when
``TF_USE_LEGACY_KERAS`` is set before TensorFlow itself is imported.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) buries our one-line errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# transformers' advisory notices (TF deprecation banners) would bury our own one-line messages.
# Hub downloads happen only in checkpoints.py, and only for an --init_checkpoint written hub:<id>.
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

__version__ = "0.1.0"

# TensorFlow 2.21 logs its start-up notices through absl before its log level applies, so
# TF_CPP_MIN_LOG_LEVEL does not hide them, and the first device listing on a machine without a GPU
# logs "failed call to cuInit" as an error. The first `import tensorflow` therefore runs with the
# process's stderr (file descriptor 2, where C++ writes) captured; known start-up notices are dropped
# and every other line is passed on.
_STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "Unable to register cuDNN factory", "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
)
_NO_GPU_NOISE = ("failed call to cuInit",)


class _QuietTensorFlowImport:
    """A meta-path finder for the first `import tensorflow`: the real spec, loaded with stderr filtered."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        import importlib.util
        import sys

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            with _filtered_stderr() as found_gpus:
                load(module)
                # The first device listing initialises CUDA; doing it here keeps its error line inside the filter.
                found_gpus.extend(module.config.list_physical_devices("GPU"))
        spec.loader.exec_module = exec_module
        return spec


class _filtered_stderr:
    def __enter__(self):
        import sys
        import tempfile

        self.found_gpus = []
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            self.saved = None
            return self.found_gpus
        self.capture = tempfile.TemporaryFile()
        os.dup2(self.capture.fileno(), 2)
        return self.found_gpus

    def __exit__(self, *exc):
        import sys

        if self.saved is None:
            return False
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.capture.seek(0)
        text = self.capture.read().decode("utf-8", errors="replace")
        self.capture.close()
        noise = _STARTUP_NOISE + (() if self.found_gpus else _NO_GPU_NOISE)
        kept = [line for line in text.splitlines(keepends=True) if not any(n in line for n in noise)]
        if kept:
            sys.stderr.write("".join(kept))
            sys.stderr.flush()
        return False


def _install_quiet_import():
    import sys

    if "tensorflow" not in sys.modules and os.environ.get("BERT_TF_VERBOSE_STARTUP") != "1":
        sys.meta_path.insert(0, _QuietTensorFlowImport())


_install_quiet_import()


def __getattr__(name):
    # bert_tf.Predictor loads on first use: importing bert_tf must stay cheap and must not load
    # TensorFlow (scripts import it first precisely so the environment is set before that).
    if name == "Predictor":
        from bert_tf.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'bert_tf' has no attribute {name!r}")
