"""The training loop the example scripts share (accelerate): arguments, features, selection, checkpoints."""

from .training import *  # noqa: F403
from .training import __all__  # noqa: F401
