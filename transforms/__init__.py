"""Pure functions over one document or a batch: no Beam, no I/O."""
