"""The one seam to Kubernetes: everything that talks to a cluster goes through this package."""
