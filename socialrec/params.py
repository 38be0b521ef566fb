"""Hyperparameters as constructor arguments, stored unmodified (scikit-learn's convention)."""

from __future__ import annotations

import inspect
from typing import Any, TypeVar

T = TypeVar("T", bound="HasParams")


class HasParams:
    """`get_params`, `set_params`, `clone` and a readable repr from the constructor signature."""

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values()
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments, as given."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self: T, **params: Any) -> T:
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no hyperparameter {key!r}; valid: {valid}")
            setattr(self, key, value)
        return self

    def clone(self: T, **overrides: Any) -> T:
        """A new, unfitted model with the same hyperparameters (and any overrides)."""
        params = self.get_params()
        params.update(overrides)
        return type(self)(**params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
