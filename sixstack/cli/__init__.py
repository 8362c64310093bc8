"The command line: every `sixstack` command."
