"""Everything that differs between Elasticsearch and OpenSearch, in one small class.

Differences handled here:

* vectors: ``dense_vector`` (Elasticsearch) vs ``knn_vector`` with the Lucene HNSW
  engine (OpenSearch), and their kNN query syntax;
* tag weights: ``rank_features`` + ``rank_feature`` queries where the
  ``mapper-extras`` module is present; Elasticsearch's core ``sparse_vector`` field
  (same Lucene feature fields, same linear scores) where it is not -- the
  Elasticsearch integ-test distribution on Maven Central lacks that module;
* text analysis: the product analyzer (lowercase, ASCII folding, light English
  stemming) needs ``analysis-common``; without it, the standard analyzer;
* stored search templates need ``lang-mustache``;
* hybrid queries fused inside the engine need OpenSearch's neural-search plugin
  (elsewhere vistag fuses client-side).
"""

from __future__ import annotations

import logging

from vistag.engine.client import EngineInfo

logger = logging.getLogger(__name__)

PRODUCT_ANALYZER = "vistag_product_text"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 100
#: The search pipeline fusing hybrid queries by RRF; the index's default where neural-search is present.
HYBRID_RRF_PIPELINE = "vistag-hybrid-rrf"
#: The RRF constant (Cormack et al., 2009), the same client-side and in the engine.
RRF_RANK_CONSTANT = 60


class EngineAdapter:
    """Engine-specific pieces of mappings and queries.

    Args:
        info: what :meth:`EngineClient.info` detected.
    """

    def __init__(self, info: EngineInfo) -> None:
        self.info = info
        self.engine = info.engine
        self.rank_features = info.has("mapper-extras")
        self.text_analysis = info.has("analysis-common")
        self.search_templates = info.has("lang-mustache")
        self.hybrid = self.engine == "opensearch" and info.has("opensearch-neural-search")
        self._version = tuple(int(x) for x in info.version.split(".")[:2] if x.isdigit())
        if self.engine == "opensearch" and not info.has("opensearch-knn"):
            raise ValueError(
                "this OpenSearch cluster has no k-NN plugin (opensearch-knn); vistag needs it for image_vector"
            )

    @classmethod
    def for_engine(cls, engine: str, full: bool = True) -> EngineAdapter:
        """An adapter for an engine without a connection (``full`` = all modules present)."""
        version = "8.19.0" if engine == "elasticsearch" else "2.19.0"
        modules: frozenset[str] = frozenset()
        if not full:
            modules = frozenset(
                {"transport-netty4", "opensearch-knn"} if engine == "opensearch" else {"transport-netty4"}
            )
        return cls(EngineInfo(engine, version, modules))

    def limitations(self) -> list[str]:
        """Human-readable notes about features this cluster lacks."""
        notes = []
        if not self.rank_features:
            notes.append(
                "no mapper-extras module: tag_weights is a sparse_vector field (same linear scores as rank_feature)"
            )
        if not self.text_analysis:
            notes.append("no analysis-common module: text uses the standard analyzer (no ASCII folding or stemming)")
        if not self.search_templates:
            notes.append(
                "no lang-mustache module: stored search templates cannot be installed (vistag renders them client-side)"
            )
        if not self.hybrid:
            notes.append("no neural-search plugin: hybrid queries are fused client-side")
        return notes

    # --------------------------------------------------------------- settings
    def index_settings(self) -> dict:
        """Index settings: shards, replicas, analysis and (OpenSearch) k-NN."""
        settings: dict = {"number_of_shards": 1, "auto_expand_replicas": "0-1"}
        if self.engine == "opensearch":
            settings["knn"] = True
        if self.hybrid:  # a hybrid query is never run without fusion (it would answer nonsense scores)
            settings["search"] = {"default_pipeline": HYBRID_RRF_PIPELINE}
        if self.engine == "elasticsearch" and self._version >= (9, 1):
            # 9.1+ leaves dense vectors out of _source by default; vistag reads them back
            # (similar products, sync, reindex --from-index), so keep them.
            settings["mapping"] = {"exclude_source_vectors": False}
        if self.text_analysis:
            settings["analysis"] = {
                "filter": {"vistag_light_english": {"type": "stemmer", "language": "light_english"}},
                "analyzer": {
                    PRODUCT_ANALYZER: {
                        "type": "custom",
                        "tokenizer": "standard",
                        "filter": ["lowercase", "asciifolding", "vistag_light_english"],
                    }
                },
            }
        return settings

    @property
    def text_analyzer(self) -> str:
        """Analyzer name for product text fields."""
        return PRODUCT_ANALYZER if self.text_analysis else "standard"

    # ---------------------------------------------------------------- vectors
    def vector_mapping(self, dim: int, quantization: str = "none") -> dict:
        """Mapping of an indexed HNSW vector compared by cosine similarity.

        Args:
            dim: dimensions.
            quantization: ``none`` keeps float vectors in the graph; ``int8`` searches
                int8/int7 scalar-quantized copies (Elasticsearch ``int8_hnsw``,
                OpenSearch's Lucene ``sq`` encoder); the floats stay on disk.
        """
        if quantization not in ("none", "int8"):
            raise ValueError(f"unknown vector quantization {quantization!r}: none or int8")
        if self.engine == "elasticsearch":
            kind = "int8_hnsw" if quantization == "int8" else "hnsw"
            return {
                "type": "dense_vector",
                "dims": dim,
                "index": True,
                "similarity": "cosine",
                "index_options": {"type": kind, "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
            }
        parameters: dict = {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}
        if quantization == "int8":
            # 7-bit scalar quantization; OpenSearch 3.6+ requires the bits, 2.x takes 7 as its only default.
            parameters["encoder"] = {"name": "sq", **({"parameters": {"bits": 7}} if self._version >= (3, 0) else {})}
        return {
            "type": "knn_vector",
            "dimension": dim,
            "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil", "parameters": parameters},
        }

    # ----------------------------------------------------------- tag weights
    def features_mapping(self) -> dict:
        """Mapping of the weighted-tag field."""
        return {"type": "rank_features"} if self.rank_features else {"type": "sparse_vector"}

    def feature_clause_template(self, field: str) -> str:
        """Mustache for one weighted-tag clause in a ``{{#tags}}`` section (``tag``, ``weight``).

        Both forms score ``weight * stored_weight`` (linear), so results match across engines.
        """
        if self.rank_features:
            return f'{{"rank_feature":{{"field":"{field}.{{{{tag}}}}","linear":{{}},"boost":{{{{weight}}}}}}}}'
        return f'{{"term":{{"{field}":{{"value":"{{{{tag}}}}","boost":{{{{weight}}}}}}}}}}'
