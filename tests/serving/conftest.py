from tests.fixtures.triton import (  # noqa: F401  (shared, started once per session)
    built_repository,
    scratch_repository,
    triton_client,
    triton_server,
)
