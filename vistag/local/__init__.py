"""Local Elasticsearch and OpenSearch nodes and clusters on loopback, for development, tests and the demo.

Laid out from Maven Central with pinned digests (:mod:`~vistag.local.versions`),
started, watched and stopped by :class:`~vistag.local.node.LocalNode` and
:class:`~vistag.local.cluster.LocalCluster`. Production code never imports this
package (a test enforces it); the CLI's ``vistag engine`` and ``vistag demo`` do.
"""
