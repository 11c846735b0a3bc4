"""Dataset curation (``medsam prepare``) and training (``medsam train``).

Heavy modules are imported where they are used; importing this package is cheap.
"""
