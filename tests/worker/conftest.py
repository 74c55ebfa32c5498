from tests.fixtures.triton import built_repository  # noqa: F401  (shared, built once per session)
