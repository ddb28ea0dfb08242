"""The pure mapping layer: records in, decisions out. No I/O here."""
