"""Arrow shard sets on any filesystem: atomic shard writing, the manifest, verified reading, sampling."""
