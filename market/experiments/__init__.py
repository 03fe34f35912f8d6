"""Reproductions of the papers' experiments; each module is one `gridnode sim` experiment."""
