"""``make-synthetic-voc`` and ``check-data``."""
import json
import sys

from .errors import UserError


def run_make_synthetic(args):
    from ..data.records import DataError
    from ..data.synthetic import make_synthetic_voc
    try:
        summary = make_synthetic_voc(args.out, num_train=args.num_train, num_val=args.num_val,
                                     image_size=args.image_size, seed=args.seed, max_objects=args.max_objects,
                                     aspect_jitter=args.aspect_jitter, overwrite=args.overwrite,
                                     workers=args.workers)
    except DataError as err:
        raise UserError(str(err)) from None
    print(json.dumps(summary, indent=1))
    return 0


def run_check_data(args):
    from ..data.check import check_dataset
    from ..data.records import DataError
    try:
        report = check_dataset(args.dataset, args.split, decode_images=not args.no_decode, workers=args.workers,
                               classes=args.classes)
    except DataError as err:
        raise UserError(str(err)) from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        print(report.to_text())
    if not report.ok:
        print(f"check-data: {len(report.problems)} problem(s) found", file=sys.stderr)
        return 1
    return 0


def register(sub):
    p = sub.add_parser("make-synthetic-voc", help="write a small VOC-format shapes detection data set")
    p.add_argument("out", help="output folder (gets classes.txt and VOCsynth/)")
    p.add_argument("--num-train", type=int, default=256)
    p.add_argument("--num-val", type=int, default=64)
    p.add_argument("--image-size", type=int, default=128, help="longer image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-objects", type=int, default=4, help="objects per image at most")
    p.add_argument("--aspect-jitter", type=float, default=0.25,
                   help="shorter side drawn from [1 - j, 1] x image size (0: square images)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--overwrite", action="store_true", help="replace an existing synthetic data set in OUT")
    p.set_defaults(func=run_make_synthetic)

    p = sub.add_parser("check-data", help="list problems of a VOC/COCO data set file by file (exit 1 if any)")
    p.add_argument("dataset", help="voc:PATH (VOCdevkit-like folder) or coco:PATH")
    p.add_argument("--split", default=None, help="e.g. 2007_trainval, val2017 (default: every split)")
    p.add_argument("--classes", default=None,
                   help="VOC class-list file (default: ROOT/classes.txt or the 20 VOC classes)")
    p.add_argument("--no-decode", action="store_true", help="do not decode images (faster; checks existence only)")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_check_data)
