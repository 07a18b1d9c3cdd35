"""Scenarios: incidents written as data (format), the objects they build and the player."""
