"""Catch a tensor left on the wrong device without a GPU.

Debian's PyTorch 1.13 does not raise when a `meta` tensor meets a CPU tensor, so a model built on
the `meta` device alone proves nothing. `SameDevice` is a TorchFunctionMode that looks at every
tensor argument of every torch function and Tensor method called inside it and raises
`MixedDeviceError` when they sit on more than one device, as CUDA would. Zero-dimensional CPU
tensors are let through, because PyTorch accepts them beside CUDA tensors too.
"""

import torch
from torch.overrides import TorchFunctionMode


class MixedDeviceError(RuntimeError):
    pass


def _tensors(x, out):
    if isinstance(x, torch.Tensor):
        out.append(x)
    elif isinstance(x, (list, tuple)):
        for y in x:
            _tensors(y, out)
    elif isinstance(x, dict):
        for y in x.values():
            _tensors(y, out)
    return out


class SameDevice(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        ts = _tensors(list(args) + list(kwargs.values()), [])
        devs = {t.device for t in ts if not (t.device.type == "cpu" and t.dim() == 0)}
        if len(devs) > 1:
            name = getattr(func, "__qualname__", None) or getattr(func, "__name__", str(func))
            raise MixedDeviceError(f"{name} mixes devices {sorted(str(d) for d in devs)}")
        return func(*args, **kwargs)
