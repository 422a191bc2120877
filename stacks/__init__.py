"""One stack per layer of the platform (see README.md: the stacks)."""
