"""Step-wise propagation of one pass (``Propagator``) and a whole in-memory clip (``propagate_clip``).

``propagate_clip`` is the network-level view (tensors at working size, masks too); renders, ``vom eval`` and
training validation run shots through ``engine.passes``, which drives ``Propagator`` the same way.

A pass starts at a keyframe (``add_keyframe``) and moves one frame at a time (``step``) in the pass's
direction; a backward pass is a forward pass over the reversed frames, so the network never knows the
direction. Keys are a pure function of the pixels (``encode_keys``), so the runner caches them on disk: the
backbone's features as 8-bit codes per channel, rounded the same way on a cold run, keys projected from them.
``state_dict``/``load_state_dict`` hold everything a pass remembers (memory bank, CFAR history, frame
counter), so a render resumes mid-pass with the same results as an uninterrupted one.

The network handed in is never modified: inference runs on a private copy with BatchNorm folded and
channels_last (``device.prepare_model``), so a model that is still being trained can be validated here.
"""

from __future__ import annotations

import copy
import math
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vom_plugin.grammar import default, parse_value
from vom_plugin.model import HSTSG, Affinity, DeferredKeys, History, KeyFeatures, MemoryFrame
from vom_plugin.model.quantize import Packed, pack

from .device import inference_context, oom_guard, prepare_model, resolve_device, to_input
from .memory import MemoryBank
from .schedule import Pass, blend, plan

__all__ = ["Affinity", "KeyFeatures", "Propagator", "StepOutput", "adopt_for_inference", "inference_model",
           "propagate_clip"]

_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ADOPTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # prepared in place: (device, version)
FEATURES = ("f4", "f8", "f16")  # a frame's cached key features (backbone outputs at 1/4, 1/8, 1/16)
FEATURE_AXES = (-2, -1)  # their 8-bit codes: a step and offset per channel


def _version(model: HSTSG) -> tuple:
    """Changes whenever a parameter or buffer is modified in place (an optimiser step, a load)."""
    return tuple(t._version for t in model.state_dict(keep_vars=True).values())


def inference_model(model: HSTSG, device: torch.device) -> HSTSG:
    """A prepared copy of `model` for `device`, reused while the model's weights do not change."""
    key = (str(device), _version(model))
    if _ADOPTED.get(model) == key:
        return model
    hit = _PREPARED.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    prepared = prepare_model(copy.deepcopy(model), device)
    _PREPARED[model] = (key, prepared)
    return prepared


def adopt_for_inference(model: HSTSG, device: torch.device) -> HSTSG:
    """``inference_model`` for a model its caller hands over and no longer uses as it was (a render's own
    load of a weights file): prepared in place instead of copied, and then used as it is."""
    prepared = prepare_model(model, device)
    _ADOPTED[prepared] = (str(device), _version(prepared))
    return prepared


@dataclass
class StepOutput:
    alpha: torch.Tensor  # [1, 1, H, W] in [0, 1]
    mask: torch.Tensor  # [1, 1, H, W] in [0, 1] (sigmoid of the mask logits)
    affinity: Affinity | None = None  # this step's key-only read/CFAR weights, reusable when only the roto changes


class Propagator:
    """One propagation pass over a single object, frame by frame."""

    def __init__(
        self, model: HSTSG, *, memory: str | None = None, top_k: int | None = None,
        device: str | torch.device = "cpu"
    ) -> None:
        self.device = resolve_device(device)
        self.model = inference_model(model, self.device)
        self.top_k = parse_value("top_k", default("top_k") if top_k is None else top_k)
        self.bank = MemoryBank(memory)
        # Another keyframe's roto that every step after this pass's keyframe also reads (``anchor``); not
        # part of the bank (the policy never evicts it) nor of the saved state (the runner sets it again).
        self.anchors: list[MemoryFrame] = []
        self.history: list[History] = []
        self.t = 0  # frames processed in this pass (0 = waiting for the keyframe)

    def encode_keys(self, image: torch.Tensor) -> KeyFeatures:
        """image [1, 3, H, W] in [0, 1] -> KeyFeatures (depends on the pixels only: cacheable).

        The backbone features are rounded to 8-bit codes per channel, as the runner's cache stores them
        (``key_features``), and the keys projected from the rounded features: a render from cached
        features computes exactly what a cold one does."""
        with oom_guard(tuple(image.shape[-2:])), inference_context(self.device):
            feats = self.model.encode_key_features(to_input(image, self.device))
            return self._keys_from_codes({n: pack(f, FEATURE_AXES, offset=True)
                                          for n, f in zip(FEATURES, feats, strict=True)})

    def keys_from_features(self, feats: dict[str, torch.Tensor]) -> KeyFeatures:
        """KeyFeatures from the cache's tensors (``key_features``'s). ValueError naming the tensor when they
        are not this version's layout."""
        return self._keys_from_codes({n: Packed.from_dict(feats, n, FEATURE_AXES, offset=True) for n in FEATURES})

    def _keys_from_codes(self, codes: dict[str, Packed]) -> KeyFeatures:
        with inference_context(self.device):
            f4, f8, f16 = (self._features(codes[n]) for n in FEATURES)
            # projected when first read: a step whose matches come from the cache reads no key
            keys = self.model.keys_from_features(f4, f8, f16, deferred=True)
            keys.codes = codes
            return keys

    def _features(self, codes: Packed) -> torch.Tensor:
        """A feature map from its 8-bit codes, float32 channels-last on the device (the layout the network takes).
        On the CPU in one pass over the floats: the codes (a byte a value) laid out channels-last first, then
        ``lo + q * scale`` written over their float copy; ``to_input(unpack())`` made four (the products and
        sums are exact in float32 either way, see ``quantize.pack``: the same values)."""
        if self.device.type != "cpu" or codes.lo is None or codes.q.dim() != 4:
            return to_input(codes.unpack(), self.device, dtype=torch.float32)
        x = codes.q.contiguous(memory_format=torch.channels_last).to(torch.float32)
        return torch.addcmul(codes.lo, x, codes.scale, out=x)

    @staticmethod
    def key_features(keys: KeyFeatures) -> dict[str, torch.Tensor]:
        """What the cache keeps of a frame's KeyFeatures: the backbone features' 8-bit codes with a power-of-two step
        and offset per channel (``f4``, ``f4_scale``, ``f4_lo``, ...); keys are projected again from them.
        Keys that ``encode_keys`` did not make are coded here."""
        codes = getattr(keys, "codes", None) or {
            n: pack(getattr(keys, n.replace("f", "feat", 1)), FEATURE_AXES, offset=True) for n in FEATURES}
        return {k: v for n in FEATURES for k, v in codes[n].to_dict(n).items()}

    def _keys(self, keys: KeyFeatures) -> KeyFeatures:
        """Keys on the device in the layout fresh ones have (channels_last), so keys read back from the
        runner's cache (saved contiguous) give bit-identical results to freshly computed ones.
        ``keys_from_features``'s (DeferredKeys) are made that way already."""
        if isinstance(keys, DeferredKeys):
            return keys
        return KeyFeatures(**{f: to_input(t, self.device) for f, t in keys.to_dict_lazy().items()})

    def _affinity(self, affinity: Affinity | None) -> Affinity | None:
        if affinity is None or affinity.w16.device == self.device:
            return affinity
        return Affinity.from_dict(affinity.to_dict(), self.device)

    def anchor(self, image: torch.Tensor, keys: KeyFeatures, mask: torch.Tensor) -> None:
        """Let every later step also read the roto ``mask`` [1, 1, H, W] of another keyframe (the one this pass
        runs toward, whose own pass it is blended with), written to memory as the keyframe's first write is
        (mask = alpha = the roto, with the keyframe bonus).

        Without it the two passes between two rotos each know only their own, so near the far keyframe one
        of the blended predictions comes from a roto many frames away (measured on validation shots with a
        second roto: the model card, "Session 18")."""
        with inference_context(self.device):
            image, mask = to_input(image, self.device), to_input(mask.float(), self.device)
            self.anchors = [self.model.memory_frame(image, self._keys(keys), mask, mask, keyframe=True)]

    def add_keyframe(self, image: torch.Tensor, keys: KeyFeatures, mask: torch.Tensor,
                     affinity: Affinity | None = None) -> StepOutput:
        """Start the pass: write memory from the roto `mask` [1, 1, H, W], return the keyframe's prediction.

        The keyframe's memory is then rewritten with mask = roto and alpha = the soft prediction.
        ``affinity``: this step's Affinity from an earlier render of the same frames and settings (only the
        roto may differ); the output is the same as without it, computed faster.
        """
        self.bank = MemoryBank(self.bank.policy)
        self.history = []
        with oom_guard(tuple(image.shape[-2:])), inference_context(self.device):
            image, mask = to_input(image, self.device), to_input(mask.float(), self.device)
            keys = self._keys(keys)
            self.bank.add(0, self.model.memory_frame(image, keys, mask, mask, keyframe=True))
            logits, alpha, hist, aff = self.model.predict_with_affinity(
                image, keys, self.bank.ordered(), [], self.top_k, self._affinity(affinity), rounded=True)
            self.bank.add(0, self.model.memory_frame(image, keys, mask, alpha, keyframe=True))
            self.history = [hist]
            self.t = 1
            return StepOutput(self.model.publish(self.model.finish(image, logits, alpha)).float(),
                              torch.sigmoid(logits.float()), aff)

    def step(self, image: torch.Tensor, keys: KeyFeatures, affinity: Affinity | None = None) -> StepOutput:
        """Predict the next frame of the pass from memory, then write it to memory if the policy says so.

        ``affinity``: as for ``add_keyframe``.
        """
        if self.t == 0:
            raise RuntimeError("Propagator.step() called before add_keyframe()")
        with oom_guard(tuple(image.shape[-2:])), inference_context(self.device):
            image = to_input(image, self.device)
            keys = self._keys(keys)
            logits, alpha, hist, aff = self.model.predict_with_affinity(
                image, keys, self.bank.ordered() + self.anchors, self.history, self.top_k,
                self._affinity(affinity), rounded=True)
            mask = torch.sigmoid(logits)
            self.history = [hist, *self.history][: self.model.config.cfar_frames - 1]
            if self.bank.writes(self.t):
                self.bank.add(self.t, self.model.memory_frame(image, keys, self.model.memory_mask_of(mask), alpha))
            self.t += 1
            return StepOutput(self.model.publish(self.model.finish(image, logits, alpha)).float(), mask.float(), aff)

    # -- resume -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything the pass remembers, as CPU tensors (bank, CFAR history, frame counter)."""
        state = self.bank.state_dict()
        state["t"] = torch.tensor(self.t, dtype=torch.long)
        for j, h in enumerate(self.history):
            for i in range(3):
                state[f"hist.{j}.keys.{i}"] = h.keys[i].detach().cpu().contiguous()
                state[f"hist.{j}.readouts.{i}"] = h.readouts[i].detach().cpu().contiguous()
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.t = int(state["t"])
        self.bank.load_state_dict({k: v for k, v in state.items() if k.startswith("bank.")}, self.device)
        n = len({k.split(".")[1] for k in state if k.startswith("hist.")})
        self.history = [
            History(
                tuple(state[f"hist.{j}.keys.{i}"].to(self.device) for i in range(3)),  # type: ignore[arg-type]
                tuple(state[f"hist.{j}.readouts.{i}"].to(self.device) for i in range(3)),  # type: ignore[arg-type]
            )
            for j in range(n)
        ]


def propagate_clip(
    model: HSTSG,
    frames: torch.Tensor,
    keyframes: dict[int, torch.Tensor],
    *,
    memory: str | None = None,
    top_k: int | None = None,
    device: str | torch.device = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Propagate rotos over an in-memory clip.

    frames [T, 3, H, W] in [0, 1]; keyframes {index: mask [1, H, W] or [H, W]}. Any H, W: the clip is
    padded (replicate) to multiples of 16 and the result cropped back. Passes follow ``schedule.plan``
    and are blended by distance. Returns (alpha [T, H, W], mask [T, H, W]) on the CPU, float32.
    """
    t, _, h, w = frames.shape
    ph, pw = math.ceil(h / 16) * 16 - h, math.ceil(w / 16) * 16 - w
    padded = F.pad(frames.float(), (0, pw, 0, ph), mode="replicate") if (ph or pw) else frames.float()
    rotos = {}
    for k, m in keyframes.items():
        m = m.float().reshape(1, 1, h, w)
        rotos[int(k)] = F.pad(m, (0, pw, 0, ph), mode="replicate") if (ph or pw) else m
    alphas: dict[int, list[tuple[Pass, torch.Tensor]]] = {}
    masks: dict[int, list[tuple[Pass, torch.Tensor]]] = {}
    key_cache: dict[int, KeyFeatures] = {}
    for p in plan(list(range(t)), list(rotos)):
        prop = Propagator(model, memory=memory, top_k=top_k, device=device)
        if p.toward is not None:
            if p.toward not in key_cache:
                key_cache[p.toward] = prop.encode_keys(padded[p.toward : p.toward + 1])
            prop.anchor(padded[p.toward : p.toward + 1], key_cache[p.toward], rotos[p.toward])
        for i, f in enumerate(p.frames):
            image = padded[f : f + 1]
            if f not in key_cache:
                key_cache[f] = prop.encode_keys(image)
            out = prop.add_keyframe(image, key_cache[f], rotos[f]) if i == 0 else prop.step(image, key_cache[f])
            if p.weight(f):
                alphas.setdefault(f, []).append((p, out.alpha[0, 0, :h, :w].cpu()))
                masks.setdefault(f, []).append((p, out.mask[0, 0, :h, :w].cpu()))
    # the render's one blend rule (schedule.blend), frame by frame
    alpha_out = torch.stack([blend(f, alphas[f]) if f in alphas else torch.zeros(h, w) for f in range(t)])
    mask_out = torch.stack([blend(f, masks[f]) if f in masks else torch.zeros(h, w) for f in range(t)])
    return alpha_out.float(), mask_out.float()
