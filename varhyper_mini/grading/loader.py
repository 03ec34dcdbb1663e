"""Loading a student's solution file (a ``.py`` file, or a notebook exported as a script) as a module.

``load_module(path)`` imports the file by path and turns any failure into a one-line
``SolutionImportError``. A notebook export runs only its definitions, so that grading it does not
run its training, plots or grader cells.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import traceback as tb_module
from pathlib import Path
from types import ModuleType

__all__ = ["DEFINITIONS", "SolutionImportError", "load_module"]


class SolutionImportError(Exception):
    """Raised by ``load_module`` when a solution file could not be imported; the message is one line."""


#: What runs of a notebook exported as a script, for messages.
DEFINITIONS = "imports, functions, classes and UPPER_CASE constants"


def _is_notebook_export(source: str) -> bool:
    """True for a notebook saved as a script (``# In[ ]:`` or ``# %%`` cell markers, IPython calls)."""
    return "get_ipython()" in source or any(line.startswith(("# In[", "# %%")) for line in source.splitlines())


def _definitions(tree: ast.Module) -> ast.Module:
    """Only the definitions of ``tree``: imports, functions, classes and UPPER_CASE constants.

    The rest of a notebook's top-level code (training, plots, ``display``, the grader cell) is left
    out, so that grading runs no more than it needs. ``from __future__`` imports, which a later
    cell may hold, move to the top.
    """

    def constant(node: ast.stmt) -> bool:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [n for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        return (
            bool(names)
            and all(isinstance(t, (ast.Name, ast.Tuple)) for t in targets)
            and all(n.id.isupper() for n in names)
        )

    kept = [
        node
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        or (isinstance(node, (ast.Assign, ast.AnnAssign)) and constant(node))
    ]
    future = [n for n in kept if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    return ast.Module(body=future + [n for n in kept if n not in future], type_ignores=[])


def load_module(path: str | Path) -> ModuleType:
    """Import a ``.py`` file by path, as a fresh module.

    A notebook exported as a script (see ``_is_notebook_export``) runs only its definitions
    (imports, functions, classes and UPPER_CASE constants); ``module.__definitions_only__`` is then
    True. The file's folder is on ``sys.path`` while it is imported, and only then.

    Raises:
        SolutionImportError: the file is missing, or importing it raised (anything, ``SystemExit``
            included); the message is one line, with the line of the file where it failed.
    """
    path = Path(path)
    if not path.is_file():
        raise SolutionImportError(f"no such file: {path}")
    mod_name = f"_varhyper_solution_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise SolutionImportError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        source = path.read_text(encoding="utf-8", errors="replace")
        module.__definitions_only__ = _is_notebook_export(source)
        if module.__definitions_only__:
            tree = _definitions(ast.parse(source, str(path)))
            exec(compile(tree, str(path), "exec"), module.__dict__)  # noqa: S102 - the student's own file
        else:
            spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:
        sys.modules.pop(mod_name, None)
        where = ""
        if isinstance(err, SyntaxError) and err.lineno:
            where = f" (line {err.lineno})"
        else:
            frames = [f for f in tb_module.extract_tb(err.__traceback__) if Path(f.filename) == path.resolve()]
            if frames:
                where = f" (line {frames[-1].lineno})"
        msg = str(err).splitlines()[0] if str(err) else ""
        note = ""
        if getattr(module, "__definitions_only__", False):
            note = f" (a notebook export: only its {DEFINITIONS} run; what is graded must need nothing else)"
        raise SolutionImportError(f"importing {path} failed{where}: {type(err).__name__}: {msg}{note}") from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    return module
