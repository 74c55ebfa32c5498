"""Built-in components; importing this package registers them all."""

import importlib
import pkgutil

for _info in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
    importlib.import_module(_info.name)
