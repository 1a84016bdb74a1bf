"""The ``vistag`` command line: each command parses its flags, calls one public function of the library and prints the
result.

The parser is in :mod:`~vistag.cli.parser`, the entry point in :mod:`~vistag.cli.main`,
one module per command (family) in :mod:`vistag.cli.commands`, shared flag groups in
:mod:`~vistag.cli.options` and printing in :mod:`~vistag.cli.output`.
"""
