"""Storage: the object store with its resourceVersions and watch history, selectors, patches."""
