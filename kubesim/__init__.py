"""kubesim: a small Kubernetes API server for tests and demos (see README.md)."""
