"""A student who runs cells out of order is told which cells to run first."""

from IPython.core.interactiveshell import InteractiveShell

from tlcnn_helpers.notebook import cell_order_hint, install_cell_order_hint


def test_name_error_in_a_cell_says_which_cells_to_run(capsys):
    shell = InteractiveShell.instance()
    try:
        assert install_cell_order_hint(shell)
        result = shell.run_cell("cifar_x.shape  # made by the data cell, not run yet")
        printed = capsys.readouterr().out
        assert isinstance(result.error_in_exec, NameError)
        assert "NameError" in printed  # the real error is still shown
        assert "`cifar_x` is made by an earlier cell" in printed
        assert "Run All Above Selected Cell" in printed
        shell.run_cell("cifar_x = 1\nprint(cifar_x + 1)")
        assert "Hint" not in capsys.readouterr().out
    finally:
        shell.set_custom_exc((), None)
        InteractiveShell.clear_instance()


def test_hint_outside_ipython_is_a_no_op(monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # plain Python: no shell
    assert install_cell_order_hint() is False
    assert install_cell_order_hint(shell=object()) is False  # not an IPython shell
    assert "`P`" in cell_order_hint(NameError("name 'P' is not defined"))
