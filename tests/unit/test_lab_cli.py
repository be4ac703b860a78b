"""router7-lab's command line, where it needs no namespaces."""

import sys

from router7.lab import cli


def test_up_without_supervisord_names_the_lab_extra(tmp_path, monkeypatch, capsys):
    # `pip install router7` without the lab extra: no supervisord beside the Python.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    created = []
    monkeypatch.setattr(cli.Lab, "up", lambda self, **kw: created.append(self))
    assert cli.main(["--prefix", "t17", "up"]) == 1
    err = capsys.readouterr().err
    assert "supervisord not found" in err and "router7[lab]" in err
    assert created == []  # it stopped before creating any namespace
