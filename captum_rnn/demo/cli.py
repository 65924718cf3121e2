"""The ``captum-rnn`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

#: Subcommands handed whole to LightningCLI (``captum_rnn.demo._fit``).
_LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def _parser() -> argparse.ArgumentParser:
    from captum_rnn import __version__

    parser = argparse.ArgumentParser(
        prog="captum-rnn", description="Explain recurrent and attention sequence models."
    )
    parser.add_argument("--version", action="version", version=f"captum-rnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="train a model (movie reviews by default), explain it and write an HTML report",
    )
    demo.add_argument("--out", type=Path, default=Path("captum-rnn-demo"), help="output folder")
    demo.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    demo.add_argument("--epochs", type=int, default=None, help="training epochs")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--cache-dir", type=Path, default=None, help="data download cache")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    demo.add_argument(
        "--task",
        choices=("sentiment", "tomita", "vowels"),
        default="sentiment",
        help="movie-review sentiment (default), a Tomita language with its extracted "
        "automaton, or speaker recognition on Japanese Vowels speech",
    )
    demo.add_argument(
        "--grammar", type=int, choices=range(1, 8), default=4, help="Tomita language (1-7)"
    )
    for name in _LIGHTNING_COMMANDS:
        # listed for --help only: main() hands these to LightningCLI before argparse runs
        commands.add_parser(
            name,
            add_help=False,
            help=f"LightningCLI {name} from a YAML config "
            f"(captum-rnn {name} --help; needs captum-rnn[cli])",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``captum-rnn`` console script; returns the exit status."""
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw and raw[0] in _LIGHTNING_COMMANDS:
        from captum_rnn.demo._fit import main_fit

        return main_fit(raw)  # reads sys.argv itself when raw is sys.argv[1:] (DDP)
    args = _parser().parse_args(raw)
    if args.command == "demo":
        from captum_rnn.data import DataUnavailableError
        from captum_rnn.demo._sentiment import DemoConfig, run_demo

        config = DemoConfig(
            out=args.out,
            quick=args.quick,
            epochs=args.epochs,
            seed=args.seed,
            cache_dir=args.cache_dir,
            progress=not args.no_progress,
            task=args.task,
            grammar=args.grammar,
        )
        try:
            metrics = run_demo(config)
        except DataUnavailableError as error:
            print(f"captum-rnn demo: the data could not be fetched.\n{error}", file=sys.stderr)
            return 2
        print(json.dumps(metrics, indent=2))
        print(f"report: {(args.out / 'index.html').resolve()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
