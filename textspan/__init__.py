"""Text-based decomposition of CLIP image embeddings: direct effects, TEXTSPAN and text heatmaps."""

from textspan.decomposition import Decomposition, decompose, direct_effect_shares
from textspan.heatmaps import text_heatmap, token_heatmaps
from textspan.pools import general_pool, load_pool
from textspan.text_span import TextSpanResult, text_span, text_span_heads

__all__ = [
    "Decomposition",
    "TextSpanResult",
    "decompose",
    "direct_effect_shares",
    "general_pool",
    "load_pool",
    "text_heatmap",
    "text_span",
    "text_span_heads",
    "token_heatmaps",
]
