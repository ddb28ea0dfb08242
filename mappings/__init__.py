"""The pure mapping layer: records in, decisions out. No I/O here, with one
exception: :mod:`mappings.files` reads the admin's mapping files from disk and
builds the pure :mod:`mappings.routes` from them (its helper
:mod:`mappings.tomllines` only scans text it is given)."""
