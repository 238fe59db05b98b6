"""The execution supervisor behind the API: launching, watching, cancelling, resuming."""
