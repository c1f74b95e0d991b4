"""The one exception type that the CLI turns into a clean one-line error."""


class UserError(Exception):
    """Bad input from the user: a scenario file, a CLI argument or missing data.

    The CLI prints its message on one line and exits non-zero, without a traceback.
    """


class DivergedError(FloatingPointError):
    """Training produced a NaN or inf (a loss, an importance, a target or a mask).

    Raised before the bad value can be stored; the CLI reports it on one line, like a UserError.
    """


class NoRoomError(UserError, ValueError):
    """A model cannot take another task with the values it was built with (HSFPlugin's null_space
    once the old tasks fill its hypernetwork's last layer).

    A property of the values chosen, found before training where the number of tasks is known:
    tuning draws other values instead, and the CLI reports it on one line.
    """
