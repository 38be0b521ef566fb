"""socialrec: recommendations for social platforms, with language models.

Importing this package does no work; the public names are re-exported lazily.
"""

from socialrec.errors import (
    DataError,
    LeakageError,
    MissingDependencyError,
    NotFittedError,
    SocialrecError,
    UnknownIdError,
)

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "LeakageError",
    "MissingDependencyError",
    "NotFittedError",
    "SocialrecError",
    "UnknownIdError",
    "__version__",
]
