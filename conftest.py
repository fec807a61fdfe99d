"""Root conftest: the shared fixtures live in tests/fixtures/ as plugins."""

pytest_plugins = [
    "tests.fixtures.redis",
    "tests.fixtures.bot",
    "tests.fixtures.aws",
]
