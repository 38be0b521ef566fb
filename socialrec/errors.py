"""The exceptions socialrec raises. Each message says what is wrong, where, and what to do."""

from __future__ import annotations


class SocialrecError(Exception):
    """Base class of every error socialrec raises on purpose."""


class DataError(SocialrecError, ValueError):
    """Input data is malformed. Carries the file, line and field when they are known."""

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        line: int | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = path
        self.line = line
        self.field = field
        self.fix = fix
        where = []
        if path is not None:
            where.append(str(path))
        if line is not None:
            where.append(f"line {line}")
        if field is not None:
            where.append(f"field '{field}'")
        message = (", ".join(where) + ": " if where else "") + problem
        if fix:
            message += f". {fix}"
        super().__init__(message)


class NotFittedError(SocialrecError, RuntimeError):
    """A model was used before `fit`."""

    def __init__(self, model: object, action: str = "recommend") -> None:
        name = type(model).__name__
        super().__init__(
            f"This {name} is not fitted yet: call {name}.fit(training_data) before {action}(...)."
        )


class UnknownIdError(SocialrecError, KeyError):
    """An external user or item id is not known to the id map."""

    def __init__(self, kind: str, ids: list[object], known: int) -> None:
        shown = ", ".join(repr(i) for i in ids[:5]) + (" ..." if len(ids) > 5 else "")
        self.ids = ids
        msg = (
            f"{len(ids)} unknown {kind} id(s): {shown} (the map knows {known} {kind}s). "
            f"Check the id spelling and type (ids are compared as strings), "
            f"or add the {kind}s to the dataset before using them."
        )
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class MissingDependencyError(SocialrecError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the optional package '{package}'. "
            f"Install it with: pip install 'socialrec[{extra}]'"
        )


class LeakageError(SocialrecError, ValueError):
    """An evaluation split shares (user, item) pairs between training and test."""


class ConfigError(SocialrecError, ValueError):
    """A configuration value or key is invalid."""
