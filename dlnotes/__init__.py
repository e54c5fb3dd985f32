__version__ = "0.0.1"

# The flat modules of version 0.0.1 moved into one sub-package per chapter of the notes. Importing one of the
# old paths raises an ImportError that names the new one (instead of a bare "No module named ...").
import importlib.abc as _abc, sys as _sys

_MOVED = {
    "basics": "dlnotes.nn.basics", "deep": "dlnotes.nn.deep", "initialization": "dlnotes.nn.initializers",
    "layers": "dlnotes.nn.layers (Layer, Dense, Activation, Dropout), dlnotes.nn.initializers (the initializers), "
              "dlnotes.nn.losses (the losses, one_hot) and dlnotes.nn.models (Sequential, History)",
    "optimizers": "dlnotes.nn.optimization (the chapter-1 functions, schedules, model) and dlnotes.nn.optimizers "
                  "(SGD, Momentum, RMSprop, Adam, get_optimizer)",
    "regularization": "dlnotes.nn.regularization", "batchnorm": "dlnotes.nn.batchnorm",
    "hyperparameters": "dlnotes.nn.hyperparameters", "metrics": "dlnotes.strategy.metrics",
    "diagnosis": "dlnotes.strategy.diagnosis", "transfer": "dlnotes.strategy.transfer",
    "conv": "dlnotes.vision.convolution", "cnn": "dlnotes.vision.cnn",
}

class _MovedModules(_abc.MetaPathFinder):
    "Consulted after the normal finders, so only for modules that no longer exist."
    def find_spec(self, fullname, path=None, target=None):
        old = fullname[len("dlnotes."):] if fullname.startswith("dlnotes.") else None
        if old in _MOVED:
            raise ImportError(f"{fullname} moved: import it from {_MOVED[old]}", name=fullname)
        return None

if not any(type(f).__name__ == "_MovedModules" for f in _sys.meta_path): _sys.meta_path.append(_MovedModules())
