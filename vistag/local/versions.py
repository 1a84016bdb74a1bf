"""The one place where engine versions and the Maven artifacts behind them are pinned.

Versions are the newest of each line whose Maven Central artifacts run on a Java 17
JDK: OpenSearch 2.19.1 is the newest 2.x with a matching ``opensearch-knn`` plugin
on Maven Central (2.19.1.0), Elasticsearch 8.19.21 the newest 8.x integ-test-zip.

The integ-test-zip distributions carry only the transport module (and, for
Elasticsearch, x-pack core/security). For OpenSearch we add the modules vistag
needs from the jars OpenSearch publishes to Maven Central; Elasticsearch 8 does not
publish its module jars, so its local node runs without ``mapper-extras``,
``lang-mustache`` and ``analysis-common`` and vistag adapts (see
:mod:`vistag.engine.adapter`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPENSEARCH_VERSION = "2.19.1"
OPENSEARCH_KNN_VERSION = "2.19.1.0"
ELASTICSEARCH_VERSION = "8.19.21"


@dataclass(frozen=True)
class Artifact:
    """A Maven artifact, ``group:artifact:version[:packaging]``.

    ``sha256`` pins the file's digest in code, for artifacts the repository
    publishes no ``.sha1`` for (vistag then verifies the pin instead).
    """

    group: str
    artifact: str
    version: str
    packaging: str = "jar"
    sha256: str = ""

    @property
    def coordinates(self) -> str:
        """The ``mvn dependency:copy -Dartifact=`` string."""
        return f"{self.group}:{self.artifact}:{self.version}:{self.packaging}"

    @property
    def filename(self) -> str:
        """File name in a Maven repository."""
        return f"{self.artifact}-{self.version}.{self.packaging}"

    @property
    def repo_path(self) -> str:
        """Path of the file below a Maven repository root."""
        return "/".join([*self.group.split("."), self.artifact, self.version, self.filename])


@dataclass(frozen=True)
class Module:
    """An engine module assembled from Maven jars (OpenSearch only).

    Attributes:
        name: module folder name, as the engine reports it.
        classname: the plugin entry class.
        jars: the module jar and its runtime dependencies.
        policy: the Java security policy grants the module needs.
    """

    name: str
    classname: str
    jars: tuple[Artifact, ...]
    policy: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Distribution:
    """Everything needed to lay out one local engine node.

    Attributes:
        plugins: installed in this order (a plugin after the ones it extends).
        extras: optional plugin sets, laid out only when asked for
            (``vistag engine install --with ml``), installed after ``plugins``.
        extra_settings: node settings each extra needs.
    """

    engine: str
    version: str
    archive: Artifact
    modules: tuple[Module, ...] = ()
    plugins: tuple[Artifact, ...] = ()
    extras: dict[str, tuple[Artifact, ...]] = field(default_factory=dict)
    extra_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    min_java: int = 17

    def layout_id(self, extras: tuple[str, ...] = ()) -> str:
        """What a laid-out folder holds (its marker): changes when a pin changes."""
        parts = [
            self.archive.coordinates,
            *(f"{m.name} {m.classname}" for m in self.modules),
            *(a.coordinates for a in self.plugins),
            *(a.coordinates for e in sorted(extras) for a in self.extras[e]),
        ]
        return "\n".join(parts)


def _os(artifact: str, group: str = "org.opensearch.plugin") -> Artifact:
    return Artifact(group, artifact, OPENSEARCH_VERSION)


def _os_pinned(artifact: str, sha256: str) -> Artifact:
    return Artifact("org.opensearch.plugin", artifact, OPENSEARCH_VERSION, sha256=sha256)


_OPENSEARCH_MODULES = (
    Module(
        "lang-painless",  # the k-NN plugin extends it
        "org.opensearch.painless.PainlessPlugin",
        (
            _os("lang-painless"),
            _os("opensearch-scripting-painless-spi"),
            Artifact("org.antlr", "antlr4-runtime", "4.13.1"),
            *(
                Artifact("org.ow2.asm", name, "9.7")
                for name in ("asm", "asm-util", "asm-tree", "asm-commons", "asm-analysis")
            ),
        ),
        (
            'permission java.lang.RuntimePermission "createClassLoader";',
            'permission java.lang.RuntimePermission "getClassLoader";',
        ),
    ),
    Module(
        "lang-mustache",  # stored search templates
        "org.opensearch.script.mustache.MustachePlugin",
        (_os("lang-mustache-client"), Artifact("com.github.spullara.mustache.java", "compiler", "0.9.14")),
        (
            'permission java.lang.reflect.ReflectPermission "suppressAccessChecks";',
            'permission java.lang.RuntimePermission "accessDeclaredMembers";',
        ),
    ),
    Module(
        "mapper-extras", "org.opensearch.index.mapper.MapperExtrasPlugin", (_os("mapper-extras-client"),)
    ),  # rank_features
    Module(
        "analysis-common", "org.opensearch.analysis.common.CommonAnalysisPlugin", (_os("analysis-common"),)
    ),  # asciifolding, stemmers
    Module(
        "rank-eval",
        "org.opensearch.index.rankeval.RankEvalPlugin",
        (_os_pinned("rank-eval-client", "f6c8943914ffba3ebdd036a379272c8f92d7689c33d46658db01de19a7cdf739"),),
    ),  # _rank_eval: `vistag relevance` checks its metrics against the engine's
)

DISTRIBUTIONS: dict[str, Distribution] = {
    "opensearch": Distribution(
        engine="opensearch",
        version=OPENSEARCH_VERSION,
        archive=Artifact("org.opensearch.distribution.integ-test-zip", "opensearch", OPENSEARCH_VERSION, "zip"),
        modules=_OPENSEARCH_MODULES,
        plugins=(
            Artifact("org.opensearch.plugin", "opensearch-knn", OPENSEARCH_KNN_VERSION, "zip"),
            # Hybrid queries and the normalization / score-ranker search processors (extends opensearch-knn).
            # Note the artifact id: `neural-search`, not `opensearch-neural-search`. No .sha1 in the repository.
            Artifact(
                "org.opensearch.plugin",
                "neural-search",
                OPENSEARCH_KNN_VERSION,
                "zip",
                sha256="b17ca1d774692902c58cbae102bf463970740c31d81446866e8eabd336e285aa",
            ),
        ),
        extras={
            # ml-commons (remote models, the ml_inference ingest and search processors) and what it extends.
            "ml": (
                Artifact(
                    "org.opensearch.plugin",
                    "opensearch-job-scheduler",
                    OPENSEARCH_KNN_VERSION,
                    "zip",
                    sha256="a54e12582b88a4c173d6e58b16fbc609df12a04eff010ae30396905a1a882bf6",
                ),
                Artifact(
                    "org.opensearch.plugin",
                    "opensearch-ml-plugin",
                    OPENSEARCH_KNN_VERSION,
                    "zip",  # ~355 MB
                    sha256="2324234d81109dcb2c488da5a6b2034cc0f78d9d08e40ce49ba59fc423a5df5f",
                ),
            ),
            # The security plugin (TLS, internal users, roles): `vistag engine start --secure`. No .sha1 here.
            "security": (
                Artifact(
                    "org.opensearch.plugin",
                    "opensearch-security",
                    OPENSEARCH_KNN_VERSION,
                    "zip",
                    sha256="94a04f12ac6033902209fac1e4e512618d45beee604bbf0e42c3ed79c55220cf",
                ),
            ),
        },
        extra_settings={
            "ml": {  # a single small node that is not a dedicated ML node
                "plugins.ml_commons.only_run_on_ml_node": "false",
                "plugins.ml_commons.native_memory_threshold": "100",
                "plugins.ml_commons.jvm_heap_memory_threshold": "100",
                "plugins.ml_commons.disk_free_space_threshold": "-1",
            },
        },
    ),
    "elasticsearch": Distribution(
        engine="elasticsearch",
        version=ELASTICSEARCH_VERSION,
        archive=Artifact(
            "org.elasticsearch.distribution.integ-test-zip", "elasticsearch", ELASTICSEARCH_VERSION, "zip"
        ),
    ),
}

#: The current majors, laid out beside the defaults (``vistag engine start --version``). Both need
#: Java 21+. OpenSearch 3's integ-test zip ships every module (nothing to assemble); Elasticsearch 9's
#: has the same modules as 8.19's. SHA-256 pinned (not every artifact has a ``.sha1`` here).
RELEASES: dict[tuple[str, str], Distribution] = {
    ("opensearch", "3.6.0"): Distribution(
        engine="opensearch",
        version="3.6.0",
        archive=Artifact(
            "org.opensearch.distribution.integ-test-zip",
            "opensearch",
            "3.6.0",
            "zip",
            sha256="a91faa1dc1cadc78cb278b4f63847e19e1627a4e9de698e14e7efc14ee37b286",
        ),
        plugins=(
            Artifact(
                "org.opensearch.plugin",
                "opensearch-knn",
                "3.6.0.0",
                "zip",
                sha256="ac392ca28a39b3bf290648a422ef30cb149dda2963a9d7feb26060e932341c9a",
            ),
            Artifact(
                "org.opensearch.plugin",
                "neural-search",
                "3.6.0.0",
                "zip",
                sha256="6ef1b206e79391e2e36268e32dc34d27fd8b8a59a8eb0a7393c97d53b038e433",
            ),
        ),
        min_java=21,
    ),
    ("elasticsearch", "9.5.0"): Distribution(
        engine="elasticsearch",
        version="9.5.0",
        archive=Artifact(
            "org.elasticsearch.distribution.integ-test-zip",
            "elasticsearch",
            "9.5.0",
            "zip",
            sha256="db0e275fd790f723eca7bcde96069fd6fed304ad23afdb70c8c09553dd9e8b1b",
        ),
        min_java=21,
    ),
}


def distribution(engine: str, version: str | None = None) -> Distribution:
    """The pinned distribution of ``engine`` (the default line, or ``version``: a full
    version or a major such as ``"3"``).

    Raises:
        KeyError: no such pinned version (the message lists the known ones).

    Examples:
        >>> distribution("opensearch", "3").version
        '3.6.0'
    """
    default = DISTRIBUTIONS[engine]
    if version in (None, "", default.version, default.version.split(".")[0]):
        return default
    for (name, full), dist in RELEASES.items():
        if name == engine and version in (full, full.split(".")[0]):
            return dist
    known = [default.version, *(full for name, full in RELEASES if name == engine)]
    raise KeyError(f"no pinned {engine} {version}; known: {', '.join(known)}")
