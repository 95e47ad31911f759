"""One module per ``vom`` subcommand (see ``vom_plugin.cli``)."""
