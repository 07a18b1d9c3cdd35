"""Admission: what checks an object before it is stored (validation; Pod Security next)."""
