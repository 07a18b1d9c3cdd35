"""How a screen's title names its cluster: only when several are watched, as plain
text, clipped."""

from __future__ import annotations

from ktriage.ui.format import cluster_label, in_cluster_title


def test_one_cluster_adds_nothing_to_a_title() -> None:
    assert in_cluster_title("") == ""


def test_a_named_cluster_is_added_after_a_dot() -> None:
    assert in_cluster_title("prod-eu") == " · cluster prod-eu"


def test_hostile_cluster_name_with_controls_and_length_stays_one_short_plain_line() -> None:
    name = "[bold red]evil[/]\x1b[2J\n" + "x" * 200
    label = cluster_label(name)
    assert len(label) == 40 and label.endswith("…")
    assert "\x1b" not in label and "\n" not in label
    assert in_cluster_title(name) == f" · cluster {label}"
    assert len(cluster_label(name, 24)) == 24
