"""Packages of the distribution; everything else is declared in pyproject.toml.

The shipped themes live in the top-level `themes/` folder and install as
`ktriage.themes`. pyproject.toml cannot say "every package under ktriage/, and
this one from elsewhere" (its find lists only what lies under a folder), so the
list is made here: a new subpackage is picked up without editing a list.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["ktriage", "ktriage.*"]), "ktriage.themes"],
    package_dir={"ktriage.themes": "themes"},
)
