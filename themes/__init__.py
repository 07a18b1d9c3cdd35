"""The shipped themes, one TOML file each; installed as the package `ktriage.themes`.

The folder sits at the top of the repository so that a theme is found and edited
as data, next to the code rather than inside it; the build maps it into the
package (see setup.py), for wheels and editable installs alike.
"""
