"""Shared by every test directory: this folder is on the import path, so test modules
can import `real_fixtures`."""
