"""Generated names as Kubernetes makes them (k8s.io/apimachinery/pkg/util/rand)."""

from __future__ import annotations

# The alphabet Kubernetes uses for generated names (no vowels, no confusable digits).
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def safe_encode(text: str) -> str:
    """Kubernetes' `rand.SafeEncodeString`: each byte mapped into NAME_ALPHABET."""
    return "".join(NAME_ALPHABET[ord(c) % len(NAME_ALPHABET)] for c in text)
