"""Exception and warning types raised by esmscale."""


class EsmscaleError(ValueError):
    """Invalid input or state; the message says what is wrong, where, and how to fix it."""


class CheckpointError(EsmscaleError):
    """A checkpoint cannot be read safely (pickle, corrupt, wrong format version)."""


class EsmscaleWarning(UserWarning):
    """Warning emitted by esmscale (an error in the package's own tests)."""


class PhysicalCheckError(EsmscaleError):
    """Physically impossible input values; see :mod:`esmscale.prepare.physics`.

    Negative precipitation, temperatures outside a physical range, infinities and fill values
    that leaked through.
    """
