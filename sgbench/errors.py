"""User-facing errors: one line on stderr and exit code 2 from the CLI, never a traceback."""


class UserError(Exception):
    """Bad input from a user (YAML, paths, checkpoints, arrays, options).

    The message must fit on one line and say what is wrong and, where possible, how to fix it.
    """

    exit_code = 2

    def __init__(self, message: str):
        from sgbench.secrets import redact

        super().__init__(redact(" ".join(str(message).split())))  # one line, credentials masked


class FieldError(UserError):
    """A UserError about one field of a configuration (`key`, e.g. 'gamma_weak').

    The message reads `key: message`; a suite loader names the key path instead
    (`suite.methods[2].gamma_weak: message`) and a CLI its option (`--gamma-weak: message`).
    """

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = " ".join(str(message).split())


def require_file(path, what: str, how: str = "") -> "Path":
    """Return `path` as a Path if it is an existing file, else raise a UserError naming it."""
    from pathlib import Path

    p = Path(path).expanduser()
    if not p.is_file():
        hint = f" ({how})" if how else ""
        raise UserError(f"{what} not found: {p}{hint}")
    return p
