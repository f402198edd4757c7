"""A small cache of encoded type matrices, so that inference encodes a label set's phrases once, not per batch.

The invalidation rule, in one place: an entry is served only while every weight that fed it is unchanged.
* Any optimizer step needs a gradient first, and a gradient accumulated into a watched weight clears the cache (a
  post-accumulate-grad hook). Version counters alone are not enough: fused AdamW (torch 2.x) updates weights in place
  without bumping `_version`, which served stale type vectors to every dev evaluation.
* Writes without a gradient that bump a weight's version counter (`load_state_dict`, `copy_` under `no_grad`, weight
  interpolation) change the entry's key, which holds each weight's identity, storage, version, dtype and device.
* Writing through `.data` does neither: whoever does that calls `clear()`.
Callers also clear it when the label set changes or the model switches between training and evaluation.
"""

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

import torch


# Guards every cache (lookup, insert, eviction, clearing). Module-level, so models still deep-copy and pickle; the
# sections it guards are dict operations, the encoding itself runs outside it.
_LOCK = threading.RLock()


class TypeMatrixCache:
    """The `size` most recently used type matrices, each stored under its label set's key and its weights' state."""

    def __init__(self, size: int = 4):
        self.size = size
        self._entries: OrderedDict = OrderedDict()
        self._generation = 0  # bumped by every clear, so a matrix computed across one is not stored
        self._watched: weakref.WeakValueDictionary = weakref.WeakValueDictionary()  # id -> parameter

    def __len__(self) -> int:
        return len(self._entries)

    def __getstate__(self) -> dict:
        """Copies and pickles start empty: entries and watched weights (weak references, which do not pickle) belong
        to this instance's parameters; a copy watches its own."""
        return {"size": self.size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["size"])

    def clear(self) -> None:
        """Drop every entry, including any being computed right now."""
        with _LOCK:
            self._entries.clear()
            self._generation += 1

    def get_or_encode(
        self, key: Hashable, weights: Sequence[torch.nn.Parameter], encode: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        """The matrix cached under `key` for the current state of `weights`, or `encode()`'s result, then cached.

        Two threads computing the same key share the first matrix stored; least recently used entries are evicted.
        """
        key = (key, tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device) for p in weights))
        with _LOCK:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
            generation = self._generation
            self._watch(weights)
        matrix = encode()
        with _LOCK:
            if generation != self._generation:
                return matrix
            existing = self._entries.get(key)
            if existing is not None:
                self._entries.move_to_end(key)
                return existing
            self._entries[key] = matrix
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return matrix

    def _watch(self, weights: Sequence[torch.nn.Parameter]) -> None:
        """Clear the cache whenever a gradient is accumulated into one of `weights` (once per weight). A weak
        reference keeps the hook from holding the cache, and so the model, alive."""
        cache = weakref.ref(self)

        def invalidate(_parameter: torch.Tensor) -> None:
            owner = cache()
            if owner is not None:
                owner.clear()

        for parameter in weights:
            if parameter.requires_grad and self._watched.get(id(parameter)) is not parameter:
                parameter.register_post_accumulate_grad_hook(invalidate)
                self._watched[id(parameter)] = parameter


__all__ = ["TypeMatrixCache"]
