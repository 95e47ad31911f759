"""The HSTSG network (WACV 2023): hierarchical keys/values, top-k guided memory read, CFAR, decoder.

The network knows nothing of shots or files. Each stage is a public method so the engine can run a shot
step by step (and cache keys): ``encode_key``, ``encode_value``, ``read_memory`` (``read_dense16`` +
``read_guided``), ``refine`` (CFAR), ``decode``. ``forward_clip`` chains them over a clip for training.

Images are [B, 3, H, W] in [0, 1] (display-referred), H and W multiples of 16; the network applies the
ImageNet normalisation itself. Masks and alphas are [B, 1, H, W] in [0, 1].

Keyframe choice (the paper does not say): frame 0's memory is first written from the roto (mask = alpha =
roto), frame 0 is predicted by reading it, then its memory slot is rewritten with mask = roto and alpha =
the soft prediction, so the keyframe carries a soft alpha while its mask stays the artist's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from vom_plugin.grammar import default, parse_memory_policy, parse_value

from .cfar import CFAR
from .config import ModelConfig
from .decoder import Decoder, clamp_inward
from .deferred import deferred
from .detail import DetailRefiner
from .effnet import EfficientNetLiteTrunk
from .encoders import DeferredKeys, KeyEncoder, KeyFeatures, ValueEncoder, ValueFeatures
from .memory_read import (
    LevelMemory,
    dense_gather,
    dense_topk_match,
    dense_topk_read,
    guided_fine_idx,
    guided_gather,
    guided_topk_match,
    guided_topk_read,
    level_memory,
    to_rows,
)
from .quantize import Packed, pack
from .resnet import init_weights

Levels = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (1/16, 1/8, 1/4)


@dataclass
class MemoryFrame:
    """One memory frame, laid out for reading: (1/16 plain, 1/8 blocked by 1/16, 1/4 blocked by 1/8)."""

    levels: tuple[LevelMemory, LevelMemory, LevelMemory]

    @staticmethod
    def build(keys: Levels | KeyFeatures, values: Levels, bonus: float = 0.0) -> MemoryFrame:
        """``keys``: the three keys, or a frame's KeyFeatures (whose keys, if not projected yet or deferred, are
        laid out when the memory's keys are first read: see ``DeferredKeys``; a step whose matches came from the
        cache has projected its keys for CFAR, but no read of the memory needs their layout).
        ``bonus``: see ``level_memory``."""
        level_keys: tuple[torch.Tensor | Callable[[], torch.Tensor], ...]
        if not isinstance(keys, KeyFeatures):
            level_keys = keys
        elif keys.projected() and not isinstance(keys, DeferredKeys):
            level_keys = keys.keys()
        else:
            kf = keys
            level_keys = (lambda: kf.key16, lambda: kf.key8, lambda: kf.key4)
        return MemoryFrame(tuple(  # type: ignore[arg-type]
            level_memory(k, v, blocked=i > 0, bonus=bonus)  # type: ignore[arg-type]
            for i, (k, v) in enumerate(zip(level_keys, values, strict=True))))

    def nbytes(self) -> int:
        return sum(m.nbytes() for m in self.levels)


class History:
    """CFAR's view of one earlier query frame: its CFAR-projected keys and its (unrefined) read-outs.

    A level's key may be pending (a function that projects it): projected when first read (a later frame's
    CFAR weights at that level, a saved state), when this frame's CFAR weights there were given (from the
    cache, or a second object's lane reusing the first lane's)."""

    def __init__(self, keys: tuple[torch.Tensor | Callable[[], torch.Tensor], ...], readouts: Levels) -> None:
        if len(keys) != 3:
            raise ValueError(f"History needs a key (or a pending projection) per level, got {len(keys)}")
        self._keys: list[torch.Tensor | Callable[[], torch.Tensor]] = list(keys)
        self.readouts = readouts

    def key(self, level: int) -> torch.Tensor:
        k = self._keys[level]
        if not isinstance(k, torch.Tensor):
            k = self._keys[level] = k()
        return k

    @property
    def keys(self) -> Levels:
        return self.key(0), self.key(1), self.key(2)


@dataclass
class Affinity:
    """What one query frame's memory read and CFAR computed from keys alone: which memory positions each
    pixel reads and with what weights (1/16: idx16, w16; 1/8 and 1/4: sel, w over the guided candidates),
    and CFAR's local-window weights (None for dense CFAR). Keys depend on the pixels only and the memory's
    frames on the schedule only, so a render whose roto alone changed reuses these (the engine caches them)
    and gets results identical to computing them afresh.

    The engine's cache keeps the memory read's part and CFAR's weights at 1/16 and 1/4 (``to_dict``,
    ``CACHED_CFAR``): at 1/16 a 3x3 key projection and 75-position windows, at 1/4 the most pixels, make them
    the dearest to compute for their bytes compressed (1/4's weights are smooth: about 2 bits a weight). At 1/8
    they are computed again: the most bytes for the least time, and the cache's bytes a frame are held to 2 MB
    at 480x270. A level read back without them has ``None`` in ``cfar``, and ``predict_with_affinity`` computes
    them from the keys.
    """

    idx16: torch.Tensor  # [B, N16, k] int64
    w16: torch.Tensor  # [B, N16, k] fp32
    sel8: torch.Tensor  # [B, N16, 4, k8] int64
    w8: torch.Tensor
    sel4: torch.Tensor  # [B, N8, 4, k4] int64
    w4: torch.Tensor
    cfar: tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None] | None  # None: not stored
    # the 8-bit codes that w16 and the cached CFAR levels were rounded to (``rounded``): ``to_dict`` stores these
    codes: dict[str, Packed] = field(default_factory=dict, repr=False, compare=False)

    _INDEX = ("idx16", "sel8", "sel4")
    _CFAR = ("cfar16", "cfar8", "cfar4")
    CACHED_CFAR = (0, 2)  # the levels whose CFAR weights ``to_dict`` keeps (1/16, 1/4)
    # 8-bit codes: w16 per query position (over its k matches), CFAR's per pixel (over its window's positions);
    # the others are few or compress well in half precision
    _W16_AXES = (-1,)
    _CFAR_AXES = (1,)

    def check(self, keys: KeyFeatures, memory_frames: int) -> None:
        """ValueError unless this affinity fits these query keys and a memory of that many frames."""
        n16 = keys.feat16.shape[-2] * keys.feat16.shape[-1]  # keys have their features' sizes
        n8 = keys.feat8.shape[-2] * keys.feat8.shape[-1]
        if (self.idx16.shape[1] != n16 or self.sel8.shape[1] != n16 or self.sel4.shape[1] != n8
                or int(self.idx16.max()) >= memory_frames * n16):
            raise ValueError(f"affinity for {self.idx16.shape[1]} positions at 1/16 does not fit a query of {n16} "
                             f"positions with {memory_frames} memory frames")

    @classmethod
    def round_cfar(cls, levels: dict[int, torch.Tensor]) -> tuple[dict[int, torch.Tensor], dict[str, Packed]]:
        """CFAR's weights by level rounded as the cache stores them: 8-bit codes at the cached levels (the codes
        returned by name), half precision at the others (kept in float32)."""
        values, codes = {}, {}
        for level, w in levels.items():
            if level in cls.CACHED_CFAR:
                codes[cls._CFAR[level]] = pack(w, cls._CFAR_AXES, offset=False)
                values[level] = codes[cls._CFAR[level]].unpack()
            else:
                values[level] = _half(w)
        return values, codes  # type: ignore[return-value]

    def rounded(self) -> Affinity:
        """The weights rounded as ``to_dict`` stores them (w16 and the cached CFAR levels to 8-bit codes, the
        rest to half precision; kept in float32), indices as they are.

        The engine uses this on every path, computed or read from its cache, so a cached affinity gives the
        same pixels as a fresh one."""
        w16 = pack(self.w16, self._W16_AXES, offset=False)
        cfar, codes = None, {"w16": w16}
        if self.cfar is not None:
            values, cfar_codes = self.round_cfar({i: w for i, w in enumerate(self.cfar) if w is not None})
            cfar, codes = tuple(values.get(i) for i in range(3)), {**codes, **cfar_codes}
        r = _half
        return Affinity(self.idx16, w16.unpack(), self.sel8, r(self.w8), self.sel4, r(self.w4),  # type: ignore[arg-type]
                        cfar, codes)  # type: ignore[arg-type]

    def _code(self, name: str, w: torch.Tensor, axes: tuple[int, ...]) -> Packed:
        # an affinity that was never ``rounded`` (none the engine stores) is coded here
        return self.codes.get(name) or pack(w, axes, offset=False)

    def to_dict(self) -> dict[str, torch.Tensor]:
        """What the cache keeps, as flat CPU tensors: the memory read's part and CFAR's weights at the
        ``CACHED_CFAR`` levels that have them; w16 and those CFAR weights as 8-bit codes with a power-of-two step
        per row (``name``, ``name_scale``), w8 and w4 in half precision (see ``rounded``), indices in the
        narrowest integer type that holds them (memory positions: int16 up to 32767, candidates among 4k: uint8)."""
        out = {n: _narrow(getattr(self, n).detach().cpu()) for n in self._INDEX}
        out.update({n: getattr(self, n).detach().cpu().to(torch.float16).contiguous() for n in ("w8", "w4")})
        out.update(self._code("w16", self.w16, self._W16_AXES).to_dict("w16"))
        cfar = self.cfar or (None, None, None)
        for level in self.CACHED_CFAR:
            w = cfar[level]
            if w is not None:
                name = self._CFAR[level]
                out.update(self._code(name, w, self._CFAR_AXES).to_dict(name))
        return out

    @staticmethod
    def from_dict(d: dict[str, torch.Tensor], device: torch.device | str = "cpu") -> Affinity:
        """``to_dict``'s tensors back, checked (ValueError or KeyError naming the tensor)."""
        def get(name: str) -> torch.Tensor:
            if name not in d:
                raise KeyError(f"affinity entry lacks {name!r}")
            return d[name].to(device)

        codes = {"w16": Packed.from_dict(d, "w16", Affinity._W16_AXES, offset=False, device=device)}
        idx16 = get("idx16").long()
        if codes["w16"].q.shape != idx16.shape:
            raise ValueError(f"affinity's w16 codes {tuple(codes['w16'].q.shape)} do not match idx16 "
                             f"{tuple(idx16.shape)}")
        cfar: list[torch.Tensor | None] = [None, None, None]
        for i in Affinity.CACHED_CFAR:
            name = Affinity._CFAR[i]
            if name in d:
                codes[name] = Packed.from_dict(d, name, Affinity._CFAR_AXES, offset=False, device=device)
                cfar[i] = codes[name].unpack()
        return Affinity(idx16, codes["w16"].unpack(), get("sel8").long(), get("w8").float(), get("sel4").long(),
                        get("w4").float(), tuple(cfar), codes)  # type: ignore[arg-type]


def _half(w: torch.Tensor | None) -> torch.Tensor | None:
    """``w`` rounded to half precision, kept in float32 (None stays None)."""
    return None if w is None else w.to(torch.float16).float()


def _narrow(idx: torch.Tensor) -> torch.Tensor:
    lo, hi = (int(idx.min()), int(idx.max())) if idx.numel() else (0, 0)
    for dtype in (torch.uint8, torch.int16, torch.int32):
        info = torch.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return idx.to(dtype).contiguous()
    return idx.contiguous()


def stack_memory(frames: list[MemoryFrame]) -> tuple[LevelMemory, LevelMemory, LevelMemory]:
    """Memory frames -> one LevelMemory per level, frames concatenated frame-major."""
    return tuple(LevelMemory.cat([f.levels[i] for f in frames]) for i in range(3))  # type: ignore[return-value]


def _default_levels(state: dict, prefix: str, *args: object) -> None:
    """Weights and checkpoints from before the output levels existed load with the identity levels."""
    state.setdefault(prefix + "output_levels", torch.tensor([0.0, 1.0]))


def _default_memory_mask(state: dict, prefix: str, *args: object) -> None:
    """Weights and checkpoints from before the memory mask threshold write the soft mask to memory."""
    state.setdefault(prefix + "memory_mask", torch.tensor(0.0))


def _default_keyframe_bonus(state: dict, prefix: str, *args: object) -> None:
    """Weights and checkpoints from before the keyframe bonus read every memory frame alike."""
    state.setdefault(prefix + "keyframe_bonus", torch.tensor(0.0))


class HSTSG(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.key_encoder = KeyEncoder(config)
        self.value_encoder = ValueEncoder(config, self.key_encoder.channels)
        vd16, vd8, vd4 = config.value_dims
        win, dims = config.cfar_windows, config.cfar_dims
        self.cfar16 = CFAR(config.key_dim, vd16, win[0], dims[0])
        self.cfar8 = CFAR(config.key_dim, vd8, win[1], dims[1])
        self.cfar4 = CFAR(config.key_dim, vd4, win[2], dims[2])
        self.decoder = Decoder(self.key_encoder.channels, config.value_dims, config.decoder_dims,
                               config.guided_radius, config.guided_eps, config.edge_refine)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        # Black and white points of the published alpha (``publish``), chosen on validation data by
        # ``vom train --calibrate`` and saved with the weights; [0, 1] (identity) unless calibrated.
        self.register_buffer("output_levels", torch.tensor([0.0, 1.0]))
        self._register_load_state_dict_pre_hook(_default_levels)
        # Threshold at which a predicted mask is binarised before memory is written from it (``memory_mask_of``);
        # 0 writes the soft mask. Chosen on validation clips by ``vom train --calibrate`` and saved with the weights.
        self.register_buffer("memory_mask", torch.tensor(0.0))
        self._register_load_state_dict_pre_hook(_default_memory_mask)
        # Logit bonus of the keyframe's memory positions in every read (``memory_frame``): the read leans on the
        # frame the roto was drawn on over the network's own recent predictions, whose errors (a sinking interior,
        # a growing haze) would otherwise compound along a shot. Chosen on long validation clips by
        # ``vom train --calibrate``; 0 reads every memory frame alike.
        self.register_buffer("keyframe_bonus", torch.tensor(0.0))
        self._register_load_state_dict_pre_hook(_default_keyframe_bonus)
        # the pretrained trunk keeps the default init until its ImageNet weights are loaded (training only)
        fresh = [self.key_encoder.adapt] if self.key_encoder.pretrained_trunk else [self.key_encoder.stem,
                                                                                    self.key_encoder.trunk]
        for m in (*fresh, self.value_encoder, self.decoder):
            init_weights(m)
        # init_weights re-randomises convs; restore the deliberate zero inits of the residual branches
        for mod in self.modules():
            if hasattr(mod, "branch"):
                nn.init.zeros_(mod.branch[-1][1].weight)
        nn.init.zeros_(self.decoder.fine2.weight)
        nn.init.zeros_(self.decoder.fine2.bias)
        if self.decoder.refine is not None:
            self.decoder.refine.zero_last()
        with torch.no_grad():
            self.decoder.head.bias.copy_(torch.tensor([0.0, 0.5]))  # alpha starts mid-range, off the clamp
        # built last, so the rest of a seeded network is initialised as it was before the module existed
        self.detail: DetailRefiner | None = DetailRefiner() if config.detail else None

    # -- stages -------------------------------------------------------------------------------------
    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        return (image - self.mean) / self.std

    def key_input(self, image: torch.Tensor) -> torch.Tensor:
        """[0, 1] image -> the key trunk's input range (TF-style for the pretrained trunk, ImageNet mean/std else)."""
        if self.key_encoder.pretrained_trunk:
            return EfficientNetLiteTrunk.scale_input(image)
        return self.normalise(image)

    def encode_key(self, image: torch.Tensor) -> KeyFeatures:
        """image [B, 3, H, W] in [0, 1] -> keys and skip features (pure function of the pixels)."""
        return self.key_encoder(self.key_input(image))

    def encode_key_features(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The costly half of ``encode_key``: backbone features (f4, f8, f16) of the image."""
        return self.key_encoder.features(self.key_input(image))

    def keys_from_features(self, f4: torch.Tensor, f8: torch.Tensor, f16: torch.Tensor, *, deferred: bool = False
                           ) -> KeyFeatures:
        """The cheap half of ``encode_key``: the key projections of (f4, f8, f16); ``deferred``: made when
        first read (``DeferredKeys``)."""
        return self.key_encoder.project(f4, f8, f16, deferred=deferred)

    def encode_value(
        self, image: torch.Tensor, keys: KeyFeatures, mask: torch.Tensor, alpha: torch.Tensor
    ) -> ValueFeatures:
        # the shared stem reads the key encoder's features, not the image: normalising it was wasted (a full-res
        # subtract and divide every frame)
        image_n = None if self.value_encoder.shared_stem else self.normalise(image)
        return self.value_encoder(image_n, keys, mask, alpha)

    def memory_frame(
        self, image: torch.Tensor, keys: KeyFeatures, mask: torch.Tensor, alpha: torch.Tensor, *,
        keyframe: bool = False,
    ) -> MemoryFrame:
        """Encode values for a frame and lay keys + values out for reading; the ``keyframe``'s positions get the
        ``keyframe_bonus``."""
        bonus = float(self.keyframe_bonus) if keyframe else 0.0
        return MemoryFrame.build(keys, self.encode_value(image, keys, mask, alpha).values(), bonus)

    @staticmethod
    def read_dense16(q16: torch.Tensor, mem16: LevelMemory, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense top-k read at 1/16: q16 [B, C, h, w] -> (readout [B, Cv, h, w], idx [B, h*w, k])."""
        b, _, h, w = q16.shape
        out, idx = dense_topk_read(to_rows(q16), mem16, top_k)
        return out.transpose(1, 2).reshape(b, -1, h, w), idx

    @staticmethod
    def read_guided(
        q: torch.Tensor, mem: LevelMemory, coarse_idx: torch.Tensor, top_k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Guided top-k read at 1/8 or 1/4 from the coarser level's chosen positions (see memory_read)."""
        return guided_topk_read(q, mem, coarse_idx, top_k)

    def read_memory(
        self, keys: KeyFeatures, memory: tuple[LevelMemory, LevelMemory, LevelMemory], top_k: int
    ) -> Levels:
        """Hierarchical read: dense top-k at 1/16 guides 1/8, whose top-k guides 1/4."""
        return self.gather_memory(keys, tuple(m.values for m in memory), self.match_memory(keys, memory, top_k))

    def match_memory(self, keys: KeyFeatures, memory: tuple[LevelMemory, LevelMemory, LevelMemory], top_k: int
                     ) -> tuple[torch.Tensor, ...]:
        """The key half of ``read_memory``: (idx16, w16, sel8, w8, sel4, w4). Needs no memory values.
        ``top_k`` matches per pixel at 1/16; ``config.guided_top_k`` at 1/8 and 1/4."""
        fine_k = self.config.guided_top_k
        idx16, w16 = dense_topk_match(to_rows(keys.key16), memory[0], top_k)
        sel8, w8 = guided_topk_match(keys.key8, memory[1], idx16, fine_k)
        idx8 = guided_fine_idx(idx16, sel8, tuple(keys.key16.shape[-2:]))
        sel4, w4 = guided_topk_match(keys.key4, memory[2], idx8, fine_k)
        return idx16, w16, sel8, w8, sel4, w4

    @staticmethod
    def gather_memory(keys: KeyFeatures, values: tuple[torch.Tensor, ...], match: tuple[torch.Tensor, ...]) -> Levels:
        """The value half of ``read_memory``: the read-outs (1/16, 1/8, 1/4) of a ``match_memory`` result
        from the memory's values at each level (``LevelMemory.values``, frames concatenated)."""
        idx16, w16, sel8, w8, sel4, w4 = match
        b, _, h, w = keys.feat16.shape  # the keys' sizes (read from the features: the keys may be unprojected)
        c16, _, c4 = keys.key_channels()
        r16 = dense_gather(values[0], idx16, w16).transpose(1, 2).reshape(b, -1, h, w)
        r8 = guided_gather(values[1], idx16, sel8, w8, (h, w), c16)
        idx8 = guided_fine_idx(idx16, sel8, (h, w))
        r4 = guided_gather(values[2], idx8, sel4, w4, tuple(keys.feat8.shape[-2:]), c4)
        # channels-last (the sparse reads give them so): CFAR's sparse read and the decoder's convolutions take
        # them in that layout; every use of a read-out computes the same values from either layout, so a
        # history restored from a saved state (NCHW) gives what an uninterrupted render computes
        return tuple(r.contiguous(memory_format=torch.channels_last) for r in (r16, r8, r4))  # type: ignore[return-value]

    def refine(
        self, keys: KeyFeatures, readouts: Levels, history: list[History],
        weights: tuple[torch.Tensor | None, ...] | None = None, pks: tuple[torch.Tensor | None, ...] | None = None,
    ) -> tuple[Levels, History]:
        """CFAR at each level with the previous query frames (newest first, at most cfar_frames - 1).

        Returns the refined read-outs and this frame's History (for the frames after it). ``weights``:
        CFAR's attention weights for these keys (``cfar_weights``), per level, None (or a None level) to
        compute them; ``pks``: the keys' CFAR projections (``project_keys``) the caller has, per level, None
        to project here. A level whose weights are given reads no key: its projection goes into the History
        pending, made only if a later frame or a saved state reads it.
        """
        hist = history[: self.config.cfar_frames - 1]
        out: list[torch.Tensor] = []
        hist_keys: list[torch.Tensor | Callable[[], torch.Tensor]] = []
        for i, cfar in enumerate(self.cfars()):
            w = None if weights is None else weights[i]
            pk = None if pks is None else pks[i]
            if w is not None:
                out.append(cfar.with_weights(readouts[i], [h.readouts[i] for h in hist], w))
                hist_keys.append(pk if pk is not None else self._pending_key(keys, i))
                continue
            refined, pk = cfar(keys.key(i), readouts[i], [h.key(i) for h in hist], [h.readouts[i] for h in hist],
                               None, pk)
            out.append(refined)
            hist_keys.append(pk)
        return tuple(out), History(tuple(hist_keys), readouts)  # type: ignore[return-value]

    def cfars(self) -> tuple[CFAR, CFAR, CFAR]:
        return self.cfar16, self.cfar8, self.cfar4

    def _pending_key(self, keys: KeyFeatures, level: int) -> Callable[[], torch.Tensor]:
        return deferred(lambda: self.project_key(keys, level), keys.feat16.device.type)

    def project_key(self, keys: KeyFeatures, level: int) -> torch.Tensor:
        """The key at ``level`` (0: 1/16, 1: 1/8, 2: 1/4) projected for CFAR's attention (what History keeps)."""
        return self.cfars()[level].project(keys.key(level))

    def project_keys(self, keys: KeyFeatures) -> Levels:
        """Each level's key projected for CFAR's attention."""
        return tuple(self.project_key(keys, i) for i in range(3))  # type: ignore[return-value]

    def cfar_weights(self, pks: tuple[torch.Tensor | None, ...], history: list[History],
                     levels: tuple[int, ...] = (0, 1, 2)) -> tuple[torch.Tensor | None, ...]:
        """CFAR's attention weights for projected keys ``pks`` at ``levels`` (None at the others and where CFAR
        is dense)."""
        hist = history[: self.config.cfar_frames - 1]
        return tuple(cfar.attention_weights(pks[i], [h.key(i) for h in hist]) if i in levels else None  # type: ignore[arg-type]
                     for i, cfar in enumerate(self.cfars()))

    def publish(self, alpha: torch.Tensor) -> torch.Tensor:
        """The alpha a render publishes: the network's alpha with the calibrated black and white points
        (``output_levels``: the haze below ``lo`` to 0, solid interiors above ``hi`` to 1, linear between).
        Memory is written from the network's own alpha, as in training; only what leaves the engine is levelled."""
        lo, hi = (float(v) for v in self.output_levels)
        if lo == 0.0 and hi == 1.0:
            return alpha
        return ((alpha - lo) / (hi - lo)).clamp(0.0, 1.0)

    def finish(self, image: torch.Tensor, mask_logits: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """The decoder's alpha with the learned detail residual (``detail.py``), before the levels of ``publish``.
        Memory is written from the decoder's alpha, not from this; without the module it is that alpha."""
        if self.detail is None:
            return alpha
        residual = self.detail(image, alpha, torch.sigmoid(mask_logits.float()))
        return clamp_inward(alpha.float() + residual).to(alpha.dtype)

    def memory_mask_of(self, mask: torch.Tensor) -> torch.Tensor:
        """A predicted mask (probabilities) as memory is written from it: 1 above ``memory_mask``, else 0, or the
        soft mask when the threshold is 0. The keyframe's memory holds the binary roto; a soft mask that loses a
        little confidence every frame (or leaks into the background) compounds over a long shot instead."""
        threshold = float(self.memory_mask)
        return mask if threshold == 0.0 else (mask > threshold).to(mask.dtype)

    def decode(self, image: torch.Tensor, keys: KeyFeatures, refined: Levels) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (mask_logits, alpha), each [B, 1, H, W] at the image's resolution."""
        return self.decoder(image, (keys.feat16, keys.feat8, keys.feat4), refined)

    def predict(
        self, image: torch.Tensor, keys: KeyFeatures, memory: list[MemoryFrame], history: list[History], top_k: int
    ) -> tuple[torch.Tensor, torch.Tensor, History]:
        """One query frame: read, refine, decode. Returns (mask_logits, alpha, this frame's History)."""
        return self.predict_with_affinity(image, keys, memory, history, top_k)[:3]

    def predict_with_affinity(
        self, image: torch.Tensor, keys: KeyFeatures, memory: list[MemoryFrame], history: list[History], top_k: int,
        affinity: Affinity | None = None, *, rounded: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, History, Affinity]:
        """``predict`` that also returns the frame's Affinity, or takes it from an earlier render of the same
        frames (then only the value halves run: the results are identical to computing it afresh).

        ``rounded``: a freshly computed affinity is used ``Affinity.rounded()``, as a cached one comes back.
        A given affinity without CFAR's weights at a level (read from the cache, which keeps 1/16 and 1/4) gets
        them computed here, rounded the same way, from that level's keys alone."""
        pks: tuple[torch.Tensor | None, ...] | None = None  # projected only where CFAR needs them
        if affinity is None:
            pks = self.project_keys(keys)
            mem = stack_memory(memory)
            match = self.match_memory(keys, mem, top_k)
            # the weights of the history as it is now: computed before refine() extends it
            affinity = Affinity(*match, self.cfar_weights(pks, history))  # type: ignore[arg-type]
            if rounded:
                affinity = affinity.rounded()
            values = tuple(m.values for m in mem)
        else:
            affinity.check(keys, len(memory))
            given = affinity.cfar or (None, None, None)
            frames = len(history[: self.config.cfar_frames - 1]) + 1
            for i, (w, feat) in enumerate(zip(given, (keys.feat16, keys.feat8, keys.feat4), strict=True)):
                if w is not None:
                    self.cfars()[i].check_weights(w, feat.shape[0], frames, tuple(feat.shape[-2:]))
            # the levels with local attention whose weights did not come back (the cache keeps the coarse ones)
            missing = tuple(i for i, c in enumerate(self.cfars()) if c.window > 0 and given[i] is None)
            if missing:
                pks = tuple(self.project_key(keys, i) if i in missing else None for i in range(3))
                new = self.cfar_weights(pks, history, missing)
                # the matches and cached weights came back rounded: only the new weights are rounded here
                fresh = {i: new[i] for i in missing}
                values, codes = Affinity.round_cfar(fresh) if rounded else (fresh, {})
                affinity = replace(affinity, cfar=tuple(values.get(i, given[i]) for i in range(3)),
                                   codes={**affinity.codes, **codes})
            # no memory key is read: concatenate only the values (copying the keys was ~10% of such a frame)
            values = tuple(torch.cat([f.levels[i].values for f in memory], 1) if len(memory) > 1
                           else memory[0].levels[i].values for i in range(3))
        readouts = self.gather_memory(keys, values, (affinity.idx16, affinity.w16, affinity.sel8, affinity.w8,
                                                  affinity.sel4, affinity.w4))
        refined, hist = self.refine(keys, readouts, history, affinity.cfar, pks)
        mask_logits, alpha = self.decode(image, keys, refined)
        return mask_logits, alpha, hist, affinity

    # -- training entry ----------------------------------------------------------------------------
    def forward_clip(
        self, frames: torch.Tensor, first_mask: torch.Tensor, memory: str | None = None, top_k: int | None = None
    ) -> dict[str, torch.Tensor]:
        """frames [B, T, 3, H, W], first_mask [B, 1, H, W] -> mask_logits and alpha [B, T, 1, H, W] (``finish``ed:
        what a render publishes before the output levels).

        Frame 0's memory is written from first_mask; later frames read memory written from earlier
        predictions (not detached: gradients flow through the memory write), with CFAR over previous frames.
        ``memory`` and ``top_k`` default to the node definition's (the values a render uses).
        """
        policy = parse_memory_policy(default("memory") if memory is None else memory)
        top_k = parse_value("top_k", default("top_k") if top_k is None else top_k)
        b, t = frames.shape[:2]
        all_keys = self.encode_key(frames.flatten(0, 1))  # one batched pass over every frame of the clip
        keys = [all_keys.select(slice(i, None, t)) for i in range(t)]  # frame i of each clip: rows i, i+t, ...
        bank: dict[int, MemoryFrame] = {0: self.memory_frame(frames[:, 0], keys[0], first_mask, first_mask,
                                                             keyframe=True)}
        history: list[History] = []
        logits_out, alpha_out = [], []
        for i in range(t):
            image = frames[:, i]
            mem = [bank[j] for j in sorted(bank)]
            mask_logits, alpha, hist = self.predict(image, keys[i], mem, history, top_k)
            logits_out.append(mask_logits)
            alpha_out.append(self.finish(image, mask_logits, alpha))
            history = [hist, *history][: self.config.cfar_frames - 1]
            if i + 1 < t and policy.writes(i):
                mask = first_mask if i == 0 else self.memory_mask_of(torch.sigmoid(mask_logits))
                bank[i] = self.memory_frame(image, keys[i], mask, alpha, keyframe=i == 0)
                bank = {j: bank[j] for j in policy.retain(list(bank))}
        return {"mask_logits": torch.stack(logits_out, 1), "alpha": torch.stack(alpha_out, 1)}

    def forward(
        self, frames: torch.Tensor, first_mask: torch.Tensor, memory: str | None = None, top_k: int | None = None
    ) -> dict:
        return self.forward_clip(frames, first_mask, memory, top_k)
