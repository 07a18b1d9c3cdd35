"""ktriage: Kubernetes security incident triage in the terminal."""

__version__ = "0.1.0"
