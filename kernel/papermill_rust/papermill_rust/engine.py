"""papermill imports this module through our `papermill.engine` entry point (papermill has no
entry-point group for translators); importing it imports `translator`, which registers itself."""
from papermill.engines import NBClientEngine

# Imported for its side effect. If `translator` is the module being imported first, this returns
# the partly initialised module and `translator` registers itself when it finishes.
from . import translator  # noqa: F401


class RustEngine(NBClientEngine):
    """Same as papermill's default engine; exists so papermill imports this package."""
