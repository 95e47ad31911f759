"""Where a pass's cached work is found: the chained addresses of its steps, and the step to resume from.

A step's prediction and the memory bank after it depend on the model, the settings, the keyframe's roto
and every frame of the pass up to that step, so its address is a digest chained over them: a change to
any of them addresses other entries from that step on. The memory read's key-only matches (``Affinity``) are
chained the same way without the roto, so a re-render whose roto alone changed finds them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vom_plugin.engine.cache import ShotCache, digest

# Which arithmetic computed a prediction from its inputs: raised whenever a change to the code makes the same
# inputs give other values. 1: the 1/8 read sums the 8 kept candidates of a pixel instead of multiplying all
# 256 by a mostly-zero matrix (equal to 1e-6, not bit for bit); 2: the 1/8 and 1/4 reads and CFAR's windows are
# sparse products over channels-last rows; 3: the guided filter solves in float64; 4: key features, 1/16 read
# weights and coarse CFAR weights are rounded to 8-bit codes; 5: CFAR's weights at 1/8 are rounded to half
# precision (as at 1/4) instead of 8-bit codes; 6: CFAR's weights at 1/4 are rounded to 8-bit codes (the cache
# keeps them since its layout 5). Part of the prediction and state addresses, so a render never continues from
# another arithmetic's entries (they are misses), and stamped on every output (``vom:arithmetic``), so `vom farm
# check` fails frames another version computed: raise it for every change that gives a frame other pixels from the
# same inputs, or the check cannot tell (session 48's desqueeze of anamorphic plates changed their network input's
# size, which the cache's addresses carry; their outputs before it carry no stamp). The key features' and the
# affinities' addresses change with what they store (``step_cache.CACHE_LAYOUT``).
PREDICTION_ARITHMETIC = 6


def step_addresses(model_id: str, settings: dict[str, Any], keyframe: int, roto_fp: str, direction: int,
                   frames: list[int], fingerprint: Callable[[int], str], anchor: tuple[int, str] | None = None
                   ) -> tuple[list[str], list[str]]:
    """(prediction/state address, affinity address) of each step of a pass over ``frames``.

    ``anchor``: (frame, roto fingerprint) of the other keyframe every step reads (``Propagator.anchor``): its
    roto joins the prediction chain, its pixels both chains (its keys are in every read). A pass without one
    keeps the addresses it had before anchors existed."""
    chain = digest("pass", model_id, settings, PREDICTION_ARITHMETIC, keyframe, roto_fp, direction)
    aff_chain = digest("affinity", model_id, settings, keyframe, direction)
    if anchor is not None:
        frame, anchor_roto = anchor
        chain = digest(chain, "anchor", frame, fingerprint(frame), anchor_roto)
        aff_chain = digest(aff_chain, "anchor", frame, fingerprint(frame))
    steps, affinities = [], []
    for f in frames:
        fp = fingerprint(f)
        chain = digest(chain, f, fp)
        aff_chain = digest(aff_chain, f, fp)
        steps.append(chain)
        affinities.append(aff_chain)
    return steps, affinities


def resume_point(cache: ShotCache, steps: list[str], limit: int, new_propagator: Callable[[], Any],
                 device: Any, served: list[bool] | None = None) -> tuple[int, Any]:
    """(index to compute from, a Propagator holding the memory state there or None for a fresh one).

    The furthest step below ``limit`` whose memory state is on disk and loads, with every earlier
    prediction there too that the render delivers (``served``: whether step i serves one of its frames; None: all);
    ``limit`` itself (and None) when every prediction of the pass is on disk. A farm chunk goes on from the state
    the chunk before it left though the predictions of that chunk's frames went to the size cap (QA).
    A state that does not load, or holds another step than its address says, is dropped (a miss).
    """
    have = [(served is not None and not served[i]) or cache.has_alpha(h) for i, h in enumerate(steps[:limit])]
    first_missing = have.index(False) if False in have else limit
    if first_missing == len(steps):
        return first_missing, None
    for i in range(first_missing - 1, -1, -1):
        if not cache.has_state(steps[i]):
            continue
        state = cache.get_state(steps[i])
        if state is None:
            continue
        prop = new_propagator()
        try:
            prop.load_state_dict({k: v.to(device) for k, v in state.items()})
            if prop.t != i + 1 or not len(prop.bank):  # a state after step i has seen i + 1 frames
                raise ValueError(f"it holds {len(prop.bank)} memory frames after {prop.t} steps, "
                                 f"expected step {i + 1}")
        except Exception as e:  # verified bytes of a layout this version does not read: a miss
            cache.drop("state", steps[i], f"memory state does not load ({type(e).__name__}: {e})")
            continue
        return i + 1, prop
    return 0, None
