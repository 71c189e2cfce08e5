"""What a finished analysis writes for people and other programs to read.

=====================  ================================================================
:mod:`.base`           the result format version, the reader of a result directory and
                       the :class:`~concerted.outputs.base.Output` protocol
:mod:`.exports`        ``accounts/posts/timeline.parquet``, copied from the case when
                       ``concerted analyze`` writes the result
:mod:`.figures`        numbers, times and chart geometry as the page shows them; the
                       page's :class:`~concerted.outputs.figures.Limits`
:mod:`.views`          one campaign's accounts: their network, evidence and activity
:mod:`.sections`       the network and brigade sections of the page
:mod:`.model`          :func:`~concerted.outputs.model.collect`: the page's model
:mod:`.page`           ``report.html``, rendered from the templates
:mod:`.summary`        ``summary.json``, the findings without message text
=====================  ================================================================

Outputs never import the analysis: they read its result directory.
"""

from __future__ import annotations

from concerted.outputs import exports, page, summary
from concerted.outputs.base import (
    REPORT_FILE,
    RESULT_FORMAT,
    SUMMARY_FILE,
    Output,
)
from concerted.outputs.figures import Limits
from concerted.outputs.model import collect

__all__ = [
    "OUTPUTS",
    "REPORT_FILE",
    "RESULT_FORMAT",
    "SUMMARY_FILE",
    "Limits",
    "Output",
    "collect",
    "exports",
    "page",
    "summary",
]

#: The outputs built from a result directory alone.
OUTPUTS: tuple[Output, ...] = (page, summary)
