"""Errors a user can fix.

The library raises these with a one-line message that names the problem and the fix;
the CLI turns them into that line on stderr and exit code 2. The library never exits.
"""


class TimefliesError(Exception):
    """Base class: bad input, missing or wrong weights, unusable options."""


class InputError(TimefliesError):
    """An input file (photo, video, label map, frame folder) cannot be used."""


class WeightsError(TimefliesError):
    """Model weights are missing, corrupt or do not match their config."""


class OptionError(TimefliesError):
    """An option's value is out of its range, not finite, or beyond this machine."""
