"""timeflies: animate a still photo with a reference time-lapse (Time Flies, CVPR 2020).

Library API (the CLI only wraps it):

    from timelapse_cli import animate
    result = animate("photo.jpg", "ref.mp4", "out.mp4", size=512, seed=1)

`Animator` keeps a loaded model for many calls. Heavy modules load on first use.
"""
from .errors import InputError, TimefliesError, WeightsError

__version__ = "0.1.0"
__all__ = ["animate", "Animator", "AnimateOptions", "TimefliesError", "InputError", "WeightsError"]


def __getattr__(name: str):
    # Deferred so that `import timelapse_cli` (and the CLI's --help) does not load torch.
    if name in ("animate", "Animator", "AnimateOptions", "AnimateResult"):
        from . import animation  # the module is not called `animate`: that name is the function

        return getattr(animation, name)
    raise AttributeError(name)
