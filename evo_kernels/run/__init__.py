"""Jobs that carry out searches: optimize (one problem), suite, tune, port. Each owns a store and a pool."""
