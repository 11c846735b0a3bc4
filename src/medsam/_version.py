__version__ = "0.1.0"
#: the name on the package index (``medsam`` there is an unrelated placeholder); it installs
#: the ``medsam`` package and the ``medsam`` command
DISTRIBUTION = "medsam-toolkit"
