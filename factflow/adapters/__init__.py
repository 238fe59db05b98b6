"""Adapters: the protocol adapter authors implement, the registry that finds them by
`type:` (built-ins, the `factflow.adapters` entry-point group, dotted paths), and the
generic built-in adapters."""
