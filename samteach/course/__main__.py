"""The course's own tooling from the command line.

    python -m samteach.course build-labs            # labs/ from solutions/ (what a test checks)
    python -m samteach.course refresh [01 ...]      # re-run solutions, store outputs, build labs
    python -m samteach.course grade SUBMISSIONS --out GRADES [--timeout 60] [--workers N]
    python -m samteach.course reevaluate NAME [...] --reason "what changed in the scenes"
"""

from pathlib import Path

from ..utils.cli import ArgumentParser, CommandFailed, run
from .labs import ROOT, build_labs, refresh

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser("python -m samteach.course", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-labs", help="generate labs/ from solutions/")
    build.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    fresh = sub.add_parser("refresh", help="re-run solutions, store outputs, rebuild labs")
    fresh.add_argument("names", nargs="*", help="notebook name prefixes (default: all)")
    grade = sub.add_parser("grade", help="grade a folder of submitted labs")
    grade.add_argument("submissions", type=Path,
                       help="one folder per student holding their NN_name.ipynb files, or the "
                            "notebooks themselves named STUDENT__NN_name.ipynb")
    grade.add_argument("--out", type=Path, required=True, help="folder for the gradebook")
    grade.add_argument("--timeout", type=float, default=120.0, help="seconds per cell")
    grade.add_argument("--workers", default="auto",
                       help="notebooks graded at once (default auto: one per core, at most 8)")
    again = sub.add_parser("reevaluate", help="remake shipped weights' held-out figures after "
                                              "a change to the scene generators")
    again.add_argument("names", nargs="+", help="shipped weights (SAM or CLIP) by name")
    again.add_argument("--reason", required=True, help="what changed, recorded in the JSON")
    args = parser.parse_args(argv)
    if args.command == "build-labs":
        for path in build_labs(args.names or None):
            print(path.relative_to(ROOT))
    elif args.command == "refresh":
        refresh(args.names or None)
    elif args.command == "reevaluate":
        from ..text.clip import CLIP_DIR
        from ..text.train import reevaluate_clip
        from .release import reevaluate

        for name in args.names:  # a shipped CLIP by its name, else SAM weights
            again = reevaluate_clip if (CLIP_DIR / f"{name}.json").is_file() else reevaluate
            again(name, args.reason)
            print(f"reevaluated {name}")
    else:
        from .grading import grade_folder

        result = grade_folder(args.submissions, args.out, timeout=args.timeout,
                              workers=args.workers)
        print(result.summary())
        if result.failure:  # the gradebook is written, but the checks did not all run
            raise CommandFailed(result.failure)
    return 0


if __name__ == "__main__":
    run(main)
