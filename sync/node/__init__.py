"""The store node's side of the sync protocol: the feed applier and the sync agent."""
