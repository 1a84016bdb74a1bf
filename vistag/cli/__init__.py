"""The ``vistag`` command line: parser in :mod:`.parser`, entry point in :mod:`.main`."""
