"""Project hooks: parameters are validated once, when a Kedro session creates its context."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from trendflow.params import validate_parameters


class ParameterValidationHook:
    """Fail `kedro run` before any node when a processing/dataset/inference parameter is wrong."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        validate_parameters(context.params)
