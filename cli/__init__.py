"""The click front end of graphret (the `graphret` command)."""
