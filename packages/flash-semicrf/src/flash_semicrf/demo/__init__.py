"""The ``flash-semicrf demo`` command: a semi-CRF against a softmax baseline on synthetic genes."""

from .run import DemoConfig, format_report, run_demo

__all__ = ["DemoConfig", "format_report", "run_demo"]
