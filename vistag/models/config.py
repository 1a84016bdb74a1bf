"""Backbone configuration: what preprocessing and the index mapping are derived from."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class BackboneConfig:
    """Describes a backbone's weights, as timm's pretrained configs do.

    Attributes:
        name: registry name, e.g. ``efficientnet-lite0``.
        input_size: side of the square input, in pixels.
        mean: per-channel mean on the 0..1 scale.
        std: per-channel standard deviation on the 0..1 scale.
        embedding_dim: size of the pooled embedding.
        weights: where the weights come from (package, file path or ``random``).
        version: bumps whenever embeddings of the same image would change.
        fill: RGB colour used to pad images to a square (white product backgrounds).
        interpolation: PIL resampling filter name used for resizing.
        pooling: ``mean`` (global average of the last feature map) or, for
            EfficientNet-Lite, ``mean+mid``: that plus the global average of the
            stride-16 stage, which keeps colour and texture that the last stage
            discards (+2.5 points baseColour accuracy, see
            ``benchmarks/results-resolution.txt``), or ``mean+midgrid``: also that
            stage's 2x2 grid means, which keep the spatial layout
            (``benchmarks/results-pooling.txt``).
        colour: when above 0, the CIELAB colour evidence of the same input
            (:class:`vistag.models.colour.ColourJoined`, 208 numbers) is appended to
            the CNN vector with this norm next to it; ``embedding_dim`` counts both.
        flip: embed the image and its mirror image and average the two (test-time
            augmentation inside the embedding: twice the forward cost, and the vector
            no longer depends on which way the product faces).
        attention: EfficientNet-Lite with Chen et al.'s spatial attention module after its
            last block (:class:`vistag.models.backbones.SpatialAttention`; trained by
            ``vistag train --fine-tune``).
        head_vectors: when above 0, the network is followed by the multi-task head's
            standardisation and hidden layer of this width, trained with the heads, and the
            embedding is that layer's output (:class:`vistag.models.backbones.HeadVectors`;
            ``vistag train --head-vectors``): image search reads what the heads learnt to
            tell apart. ``embedding_dim`` is this width; the weights are the model directory's.
        tuned: the first 12 hex digits of the sha256 of fine-tuned weights (``vistag train
            --fine-tune``); empty for the published weights. The weights themselves live in
            the model directory, so a tuned config is built from there.
    """

    name: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    embedding_dim: int
    weights: str
    version: str = "1"
    fill: tuple[int, int, int] = (255, 255, 255)
    interpolation: str = "bicubic"
    pooling: str = "mean"
    colour: float = 0.0
    flip: bool = False
    attention: bool = False
    head_vectors: int = 0
    tuned: str = ""

    def with_input_size(self, size: int | None) -> BackboneConfig:
        """A copy with another input resolution (``None`` keeps it)."""
        if size is None or size == self.input_size:
            return self
        if not 32 <= size <= 1024:
            raise ValueError(f"input size must be within 32..1024, got {size}")
        return replace(self, input_size=size)

    @property
    def model_id(self) -> str:
        """Identifies the embedding space: the same id means comparable vectors."""
        suffix = "" if self.pooling == "mean" else "-" + self.pooling.replace("+", "")
        if self.colour:
            suffix += f"-lab{self.colour:g}"
        if self.flip:
            suffix += "-flip"
        if self.attention:
            suffix += "-att"
        if self.head_vectors:
            suffix += f"-hv{self.head_vectors}"
        if self.tuned:
            suffix += f"-ft{self.tuned}"
        return f"{self.name}@{self.version}-{self.input_size}px{suffix}"

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)
