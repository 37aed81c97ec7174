"""Loaded for every test run from this repository: FUNMAGIC_TEST_STACK=containers puts the test stack in
containers (funmagic_kit.container_stack); otherwise the suites use the native stack."""

pytest_plugins = ["funmagic_kit.container_stack"]
