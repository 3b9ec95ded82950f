"""Hooked building blocks of a CLIP vision transformer, with TransformerLens hook names.

Every tensor is batch first. Intermediate values that cost time or memory (explicit LayerNorm
statistics, attention scores and patterns, per-head results) are computed only while a hook is
attached to the hook point that exposes them. Otherwise the fused PyTorch kernels run.
"""

from __future__ import annotations

import math

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint

from hooked_clip.config import HookedViTConfig


def has_hooks(hook_point: HookPoint) -> bool:
    """Return True when any forward or backward hook is attached to `hook_point`."""
    return bool(
        hook_point._forward_hooks
        or hook_point._forward_pre_hooks
        or hook_point._backward_hooks
        or hook_point._backward_pre_hooks
    )


def quick_gelu(x: Tensor) -> Tensor:
    """QuickGELU of OpenAI's CLIP, as OpenCLIP computes it: `x * sigmoid(1.702 x)`."""
    return x * torch.sigmoid(1.702 * x)


class LayerNorm(nn.Module):
    """LayerNorm over `d_model` with `hook_scale` `[batch, pos, 1]` and `hook_normalized`.

    `hook_scale` is `sqrt(var + eps)` and `hook_normalized` is `(x - mean) / scale`, before the
    elementwise weight `w` and bias `b`, as in TransformerLens.
    """

    def __init__(self, d_model: int, eps: float, dtype: torch.dtype = torch.float32):
        super().__init__()
        self.eps = eps
        self.w = nn.Parameter(torch.ones(d_model, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(d_model, dtype=dtype))
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: Float[Tensor, "batch *pos d_model"]) -> Float[Tensor, "batch *pos d_model"]:
        if not (has_hooks(self.hook_scale) or has_hooks(self.hook_normalized)):
            return F.layer_norm(x, (x.shape[-1],), self.w, self.b, self.eps)

        centred = x - x.mean(dim=-1, keepdim=True)
        scale = self.hook_scale((centred.pow(2).mean(dim=-1, keepdim=True) + self.eps).sqrt())
        normalized = self.hook_normalized(centred / scale)
        return normalized * self.w + self.b


class Embed(nn.Module):
    """Patch embedding, class token and positional embedding.

    Hook points: `hook_patch_embed` `[batch, n_patches, d_model]` (the convolution output, patches
    row by row) and `hook_pos_embed` `[batch, pos, d_model]`. The output is
    `[class token; patches] + positional embedding`, the input of `ln_pre`.
    """

    def __init__(self, cfg: HookedViTConfig):
        super().__init__()
        self.cfg = cfg
        self.W_patch = nn.Parameter(
            torch.empty(cfg.d_model, 3, *cfg.patch_size, dtype=cfg.dtype)
        )
        self.class_embedding = nn.Parameter(torch.empty(cfg.d_model, dtype=cfg.dtype))
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model, dtype=cfg.dtype))
        self.hook_patch_embed = HookPoint()
        self.hook_pos_embed = HookPoint()

    def forward(self, images: Float[Tensor, "batch 3 height width"]) -> Float[Tensor, "batch pos d_model"]:
        patches = F.conv2d(images, self.W_patch, stride=self.cfg.patch_size)
        patches = self.hook_patch_embed(einops.rearrange(patches, "batch d rows cols -> batch (rows cols) d"))

        batch = images.shape[0]
        class_token = einops.repeat(self.class_embedding, "d -> batch 1 d", batch=batch).to(patches.dtype)
        tokens = torch.cat([class_token, patches], dim=1)

        pos_embed = self.hook_pos_embed(self.W_pos.to(tokens.dtype).expand(batch, -1, -1))
        return tokens + pos_embed


class Attention(nn.Module):
    """Multi-head self-attention with TransformerLens weights and hook points.

    Weights: `W_Q`, `W_K`, `W_V` `[n_heads, d_model, d_head]`, `W_O` `[n_heads, d_head, d_model]`.
    LayerScale, when the source model has it, is folded into `W_O` and `b_O`, so `hook_result`
    `[batch, pos, head, d_model]` is what each head writes into the residual stream and
    `hook_attn_out` of the block equals `hook_result` summed over heads plus `b_O`.
    Hook points: `hook_q`, `hook_k`, `hook_v`, `hook_z` `[batch, pos, head, d_head]`;
    `hook_attn_scores` (scaled by `1/sqrt(d_head)`, before softmax) and `hook_pattern`
    `[batch, head, query_pos, key_pos]`; `hook_result`.
    """

    def __init__(self, cfg: HookedViTConfig):
        super().__init__()
        self.cfg = cfg
        shape_in = (cfg.n_heads, cfg.d_model, cfg.d_head)
        self.W_Q = nn.Parameter(torch.empty(shape_in, dtype=cfg.dtype))
        self.W_K = nn.Parameter(torch.empty(shape_in, dtype=cfg.dtype))
        self.W_V = nn.Parameter(torch.empty(shape_in, dtype=cfg.dtype))
        self.W_O = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_head, cfg.d_model, dtype=cfg.dtype))
        self.b_Q = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head, dtype=cfg.dtype))
        self.b_K = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head, dtype=cfg.dtype))
        self.b_V = nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head, dtype=cfg.dtype))
        self.b_O = nn.Parameter(torch.zeros(cfg.d_model, dtype=cfg.dtype))

        self.hook_q = HookPoint()
        self.hook_k = HookPoint()
        self.hook_v = HookPoint()
        self.hook_attn_scores = HookPoint()
        self.hook_pattern = HookPoint()
        self.hook_z = HookPoint()
        self.hook_result = HookPoint()
        self._fused_cache: tuple | None = None

    def fused_qkv_weights(self) -> tuple[Float[Tensor, "d_model qkv"], Float[Tensor, "qkv"]]:
        """Return `W_Q`, `W_K`, `W_V` as one `[d_model, 3 * n_heads * d_head]` matrix, and the biases.

        One matrix product is faster than three per-head products. Without gradients the fused
        copy is cached and rebuilt whenever a weight is replaced or modified in place (tracked by
        data pointer and version counter). With gradients it is built on each call, so gradients
        reach `W_Q`, `W_K` and `W_V`.
        """
        parameters = (self.W_Q, self.W_K, self.W_V, self.b_Q, self.b_K, self.b_V)
        cacheable = not (torch.is_grad_enabled() and any(p.requires_grad for p in parameters))
        key = tuple((p.data_ptr(), p._version, p.dtype, p.device) for p in parameters)
        if cacheable and self._fused_cache is not None and self._fused_cache[0] == key:
            return self._fused_cache[1], self._fused_cache[2]

        weight = torch.cat(
            [einops.rearrange(w, "head d_model d_head -> d_model (head d_head)") for w in parameters[:3]], dim=1
        )
        bias = torch.cat([b.flatten() for b in parameters[3:]])
        if cacheable:
            self._fused_cache = (key, weight, bias)
        return weight, bias

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        batch, pos, _ = x.shape
        weight, bias = self.fused_qkv_weights()
        qkv = torch.addmm(bias, x.reshape(batch * pos, -1), weight)
        q, k, v = einops.rearrange(
            qkv, "(b p) (three head d_head) -> three b p head d_head", b=batch, three=3, head=self.cfg.n_heads
        )
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)

        if has_hooks(self.hook_attn_scores) or has_hooks(self.hook_pattern):
            scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / math.sqrt(self.cfg.d_head)
            scores = self.hook_attn_scores(scores)
            pattern = self.hook_pattern(scores.softmax(dim=-1))
            z = torch.einsum("bhqk,bkhe->bqhe", pattern, v)
        else:
            z = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            z = z.transpose(1, 2)
        z = self.hook_z(z)

        if has_hooks(self.hook_result):
            result = self.hook_result(torch.einsum("bphe,hed->bphd", z, self.W_O))
            return result.sum(dim=2) + self.b_O
        W_O = einops.rearrange(self.W_O, "head d_head d_model -> (head d_head) d_model")
        z = einops.rearrange(z, "b p head d_head -> (b p) (head d_head)")
        return torch.addmm(self.b_O, z, W_O).view(batch, pos, -1)


class MLP(nn.Module):
    """Two-layer MLP; LayerScale, when present, is folded into `W_out` and `b_out`.

    Hook points: `hook_pre` (before the activation) and `hook_post`, `[batch, pos, d_mlp]`.
    """

    def __init__(self, cfg: HookedViTConfig):
        super().__init__()
        self.cfg = cfg
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp, dtype=cfg.dtype))
        self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp, dtype=cfg.dtype))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model, dtype=cfg.dtype))
        self.b_out = nn.Parameter(torch.zeros(cfg.d_model, dtype=cfg.dtype))
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def activation(self, x: Tensor) -> Tensor:
        if self.cfg.act_fn == "quick_gelu":
            return quick_gelu(x)
        if self.cfg.act_fn == "gelu_tanh":
            return F.gelu(x, approximate="tanh")
        return F.gelu(x)

    def forward(self, x: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        batch, pos, _ = x.shape
        pre = self.hook_pre(torch.addmm(self.b_in, x.reshape(batch * pos, -1), self.W_in).view(batch, pos, -1))
        post = self.hook_post(self.activation(pre))
        return torch.addmm(self.b_out, post.reshape(batch * pos, -1), self.W_out).view(batch, pos, -1)


class TransformerBlock(nn.Module):
    """Pre-LayerNorm residual block: `resid_mid = resid_pre + attn(ln1(resid_pre))`, then the MLP.

    Hook points: `hook_resid_pre`, `hook_attn_out`, `hook_resid_mid`, `hook_mlp_out`,
    `hook_resid_post`, all `[batch, pos, d_model]`.
    """

    def __init__(self, cfg: HookedViTConfig, block_index: int):
        super().__init__()
        self.cfg = cfg
        self.layer = block_index
        self.ln1 = LayerNorm(cfg.d_model, cfg.eps, cfg.dtype)
        self.attn = Attention(cfg)
        self.ln2 = LayerNorm(cfg.d_model, cfg.eps, cfg.dtype)
        self.mlp = MLP(cfg)

        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, resid_pre: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        resid_pre = self.hook_resid_pre(resid_pre)
        attn_out = self.hook_attn_out(self.attn(self.ln1(resid_pre)))
        resid_mid = self.hook_resid_mid(resid_pre + attn_out)
        mlp_out = self.hook_mlp_out(self.mlp(self.ln2(resid_mid)))
        return self.hook_resid_post(resid_mid + mlp_out)
