"""``captum-rnn fit|validate|test|predict``: Lightning's LightningCLI with our classes.

The model, the data module and the callbacks come from a YAML config in
LightningCLI's ``class_path``/``init_args`` form, e.g. ``examples/config_sentiment.yaml``::

    captum-rnn fit --config examples/config_sentiment.yaml
    captum-rnn fit --config examples/config_sentiment.yaml --trainer.max_epochs 1

``data.vocab_size`` (the vocabulary the data module builds) is passed on to the
model's ``vocab_size`` when both are made, so a config never repeats it. Everything
else is LightningCLI's own: ``--print_config``, ``--help``, ``--model.help CLASS``,
``--ckpt_path`` and the ``optimizer``/``lr_scheduler`` groups.

Needs the optional extra ``captum-rnn[cli]`` (``jsonargparse[signatures]``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

# Imported so that short class paths ("RNNClassifier") resolve too.
import captum_rnn.callbacks  # noqa: F401
import captum_rnn.data  # noqa: F401
import captum_rnn.models  # noqa: F401

__all__ = ["CLI_EXTRA", "CaptumRNNCLI", "main_fit"]

#: the pip extra that brings what LightningCLI needs.
CLI_EXTRA = "captum-rnn[cli]"
_SUBCOMMANDS = ("fit", "validate", "test", "predict")


def _require_jsonargparse() -> None:
    from pytorch_lightning.cli import _JSONARGPARSE_SIGNATURES_AVAILABLE

    if not _JSONARGPARSE_SIGNATURES_AVAILABLE:
        raise ModuleNotFoundError(
            "captum-rnn fit/validate/test/predict use Lightning's LightningCLI, which needs "
            f"jsonargparse[signatures]: pip install '{CLI_EXTRA}' "
            f"(or 'jsonargparse[signatures]>=4.27.7'). Details: {_JSONARGPARSE_SIGNATURES_AVAILABLE}"
        )


class CaptumRNNCLI(LightningCLI):
    """LightningCLI that passes the data module's ``vocab_size`` to the model.

    The link is applied when the data module is made (it builds its vocabulary then);
    jsonargparse skips it for a data module without ``vocab_size`` or a model without
    that argument. Constructing it needs ``jsonargparse[signatures]``.

    Example:
        >>> cli = CaptumRNNCLI(args=["--config", "config.yaml"], run=False)  # doctest: +SKIP
        >>> cli.trainer.fit(cli.model, cli.datamodule)  # doctest: +SKIP
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments(
            "data.vocab_size", "model.init_args.vocab_size", apply_on="instantiate"
        )


def main_fit(argv: Sequence[str] | None = None) -> int:
    """Run LightningCLI with captum-rnn's models, data modules and callbacks.

    Args:
        argv: the arguments after the program name, starting with the subcommand:
            ``["fit", "--config", "examples/config_sentiment.yaml"]``; default
            ``sys.argv[1:]``.

    Returns:
        The exit status: 0 on success, 2 when the ``cli`` extra is missing, the data
        cannot be fetched or the arguments are wrong (LightningCLI prints why).

    Example:
        >>> main_fit(["fit", "--config", "examples/config_sentiment.yaml"])  # doctest: +SKIP
        0
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        _require_jsonargparse()
    except ModuleNotFoundError as error:
        print(f"captum-rnn: {error}", file=sys.stderr)
        return 2
    if args and args[0] not in _SUBCOMMANDS and not args[0].startswith("-"):
        print(
            f"captum-rnn: unknown subcommand {args[0]!r}; expected one of {', '.join(_SUBCOMMANDS)}",
            file=sys.stderr,
        )
        return 2
    from captum_rnn.data import DataUnavailableError

    try:
        CaptumRNNCLI(
            # None reads sys.argv, as a command should (LightningCLI warns when given
            # both); explicit arguments from Python are passed as they are.
            args=None if args == sys.argv[1:] else args,
            parser_kwargs={"prog": "captum-rnn"},
            save_config_kwargs={"overwrite": True},
        )
    except DataUnavailableError as error:
        print(f"captum-rnn: the data could not be fetched.\n{error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # argparse errors, --help and --print_config exit
        code = exit_.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main_fit())
