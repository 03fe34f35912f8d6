"""The `gridnode` command: one module per sub-command, wired in `cli.main`."""
