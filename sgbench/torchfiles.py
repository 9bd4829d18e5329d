"""Reading torch files without executing code: `torch.load(weights_only=True)` unless trusted.

A torch `.pt`/`.pth` file is a pickle; unpickling a file from a stranger runs whatever it says.
sgbench reads tensors, numbers, strings and plain containers only; a file that holds anything
else is refused unless the user sets the documented trust flag for that kind of file (docs/reliability.md,
"What sgbench trusts").
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

from sgbench.errors import UserError

TRUST_DOC = "docs/reliability.md, 'What sgbench trusts'"


def refusal(path, what: str, error: BaseException) -> UserError:
    """The one-line refusal of a file that holds Python objects (it names them, not the bypass)."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    obj = found.group(1) if found else "a Python object"
    return UserError(f"{what} {path} holds {obj} besides tensors; sgbench does not unpickle files, since "
                     f"unpickling runs code ({TRUST_DOC})")


def load_torch_file(path, what: str, trust: bool = False, map_location="cpu"):
    """The content of a torch file; a corrupt file or one holding Python objects (untrusted) is a UserError."""
    import torch

    p = Path(path)
    try:
        return torch.load(p, map_location=map_location, weights_only=not trust)
    except pickle.UnpicklingError as e:
        if not trust:
            raise refusal(p, what, e) from None
        raise UserError(f"cannot read {what} {p}: {_first_line(e)}") from None
    except Exception as e:  # corrupt, truncated, not a torch file
        raise UserError(f"cannot read {what} {p}: {_first_line(e)}") from None


def load_state_dict(path, what: str) -> dict:
    """A plain state dict (name -> tensor) from a torch file or a `.safetensors` file, never unpickling objects."""
    import torch

    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # corrupt, truncated, not safetensors
            raise UserError(f"cannot read {what} {path}: {_first_line(e)}") from None
    sd = load_torch_file(path, what)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{what} {path} is not a state dict (a mapping of names to tensors)")
    return sd


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]
