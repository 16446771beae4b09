"""Root pytest configuration: the kubesim fixtures are available to every test."""

pytest_plugins = ["kubesim.pytest_plugin"]
