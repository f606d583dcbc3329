"""The command line: the only place that parses argv, prints, and picks exit codes."""
