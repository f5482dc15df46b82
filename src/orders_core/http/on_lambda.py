"""What a Lambda handler adds to its function, by the platform's conventions (Powertools for AWS Lambda).

* Logs: Powertools' ``Logger`` formats every logger's lines (ours, the core's, the libraries'), with the
  invocation's Lambda context on each (``cold_start``, ``function_request_id``, ``function_name``...), the
  X-Ray trace id (``xray_trace_id``) and RFC 3339 timestamps. The local processes keep :mod:`logs`' formats.
* Metrics: the samples of one invocation go out as ONE CloudWatch EMF document when it ends (Powertools'
  ``Metrics.log_metrics``), also when it raises. Locally the same samples feed Prometheus (:mod:`metrics`).

One EMF document has one value per dimension, so a sample's labels cannot all be dimensions (one batch counts
records stored AND dead-lettered): a labelled sample becomes the metric of its Prometheus series,
``orders_ingest_records_total{outcome=stored}``, under the one dimension ``function``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from orders_core.http import logs
from orders_core.http.metrics import Sample

Handler = TypeVar("Handler", bound=Callable[[Any, Any], Any])


def emf_name(sample: Sample) -> str:
    """The CloudWatch metric of a sample: its name, with its labels as Prometheus writes a series."""
    if not sample.labels:
        return sample.name
    return f"{sample.name}{{{','.join(f'{name}={value}' for name, value in sample.labels.items())}}}"


class LambdaConventions:
    """Powertools' Logger and Metrics for one function's Lambda handler (one per module, made at import)."""

    def __init__(self, function: str, namespace: str, log_level: str) -> None:
        self.function = function
        self.metrics = Metrics(namespace=namespace)
        self._log_level = log_level
        self._logger: Logger | None = None

    def emit(self, samples: Sequence[Sample]) -> None:
        """Add the samples to this invocation's EMF document (an :data:`~orders_core.http.metrics.Emit`)."""
        for sample in samples:
            seconds = sample.name.endswith("_seconds")
            if sample.value == 0 and not seconds:
                continue  # a zero adds nothing to a sum
            unit = MetricUnit.Seconds if seconds else MetricUnit.Count
            self.metrics.add_metric(name=emf_name(sample), unit=unit, value=sample.value)

    def handler(self, handle: Handler) -> Handler:
        """Decorate a Lambda handler: its log lines carry the Lambda context, its samples flush once at its end.
        Called without a context (a test, a local invoke), the lines carry none."""
        without_context = self.metrics.log_metrics(handle)
        with_context: list[Callable[[Any, Any], Any]] = []

        @functools.wraps(handle)
        def invoke(event: Any, context: Any = None) -> Any:
            if not with_context:
                with_context.append(
                    self.metrics.log_metrics(self.logger.inject_lambda_context(handle, clear_state=True))
                )
            # Not a default dimension: those are shared by every Metrics in the process. Each flush clears it.
            self.metrics.add_dimension("function", self.function)
            return (without_context if context is None else with_context[0])(event, context)

        return invoke  # type: ignore[return-value]

    @property
    def logger(self) -> Logger:
        """Powertools' Logger, its handler made the one of every logger at the first invocation (not at import:
        the module also serves functions-framework, whose lines keep the local formats)."""
        if self._logger is None:
            formatter = logs.json_formatter(use_rfc3339=True)
            handler = logs.handler()
            handler.setFormatter(formatter)
            self._logger = Logger(
                service=self.function, level=self._log_level, logger_handler=handler, logger_formatter=formatter
            )
            # Powertools attaches its handler to the logger named as the service (ours too, FUNCTION), and sets that
            # logger's level: on the root instead, it writes every logger's lines, each once, at the root's level
            # (the one logging setup may change later, as the functions-framework entry's does).
            named = logging.getLogger(self.function)
            for attached in list(named.handlers):
                named.removeHandler(attached)
            named.setLevel(logging.NOTSET)
            logging.basicConfig(level=self._log_level, handlers=[handler], force=True)
        return self._logger
