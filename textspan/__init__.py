"""Text-based decomposition of CLIP image embeddings: direct effects, TEXTSPAN and text heatmaps."""

from textspan.ablation import Ablation, TermMeans, accumulated_ablation_curve, mean_ablate, zero_shot_accuracy
from textspan.completeness import completeness
from textspan.decomposition import Decomposition, decompose, direct_effect_shares
from textspan.heatmaps import head_heatmaps, relative_heatmap, text_heatmap, token_heatmaps
from textspan.pools import common_words_pool, general_pool, load_pool, random_unit_vectors
from textspan.retrieval import nearest_images, nearest_images_for_heads, top_images_for_texts
from textspan.store import decompose_folder, load_store
from textspan.text_embeddings import embed_texts
from textspan.text_span import TextSpanResult, load_text_spans, save_text_spans, text_span, text_span_heads

__all__ = [
    "Ablation",
    "Decomposition",
    "TermMeans",
    "TextSpanResult",
    "accumulated_ablation_curve",
    "common_words_pool",
    "completeness",
    "decompose",
    "decompose_folder",
    "direct_effect_shares",
    "embed_texts",
    "general_pool",
    "head_heatmaps",
    "load_pool",
    "load_store",
    "load_text_spans",
    "mean_ablate",
    "nearest_images",
    "nearest_images_for_heads",
    "random_unit_vectors",
    "relative_heatmap",
    "save_text_spans",
    "text_heatmap",
    "text_span",
    "text_span_heads",
    "token_heatmaps",
    "top_images_for_texts",
    "zero_shot_accuracy",
]
