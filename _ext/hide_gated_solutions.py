"""Make sphinx-exercise's ``hide_solutions`` work for gated solutions (the student edition).

The book writes every solution as a gated pair, ``{solution-start}`` ... ``{solution-end}``, so that
a solution may hold code cells. With ``hide_solutions = True``, sphinx-exercise 1.x drops only the
``solution-start`` node: the solution's body stays on the page as plain text and the orphaned
``solution_end_node`` stops the HTML writer (sphinx-exercise issue #89). This extension replaces the
``solution-start`` directive with one that, when solutions are hidden, leaves a marker; a transform
then removes everything from the marker to the matching ``solution-end``, before sphinx-exercise
merges gated solutions. With ``hide_solutions = False`` (the default build) nothing changes.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)


class hidden_solution_start(nodes.Element):  # noqa: N801 (docutils node classes are lower case)
    """Where a hidden gated solution began; never reaches a writer."""


def _solution_start_directive():
    from sphinx_exercise.directive import SolutionStartDirective

    class HideableSolutionStart(SolutionStartDirective):
        def run(self) -> list[nodes.Node]:
            result = super().run()  # records the start for sphinx-exercise's structure check
            if self.env.app.config.hide_solutions:
                marker = hidden_solution_start(target=self.arguments[0])
                marker.source, marker.line = self.get_source_info()
                return [marker]
            return result

    return HideableSolutionStart


class RemoveHiddenGatedSolutions(SphinxTransform):
    # After sphinx-exercise checks the start/end structure (priority 1), before it merges (10).
    default_priority = 9

    def apply(self, **kwargs: Any) -> None:
        from sphinx_exercise.nodes import solution_end_node

        for marker in list(self.document.findall(hidden_solution_start)):
            parent = marker.parent
            start = parent.index(marker)
            end = next(
                (i for i in range(start + 1, len(parent.children)) if isinstance(parent[i], solution_end_node)), None
            )
            if end is None:
                logger.warning(
                    "hidden solution to %r has no solution-end at the same level; only its start was removed",
                    marker["target"],
                    location=marker,
                )
                parent.remove(marker)
                continue
            for child in parent.children[start : end + 1]:
                parent.remove(child)


def setup(app: Any) -> dict[str, Any]:
    app.setup_extension("sphinx_exercise")
    app.add_node(hidden_solution_start)
    app.add_directive("solution-start", _solution_start_directive(), override=True)
    app.add_transform(RemoveHiddenGatedSolutions)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
