"""``make-synthetic-voc`` and ``check-data``."""
import json
import sys

from ..schema import workers_spec
from .argtypes import flag
from .errors import UserError


def run_make_synthetic(args):
    from ..data.records import DataError
    from ..data.synthetic import make_synthetic_voc
    try:
        summary = make_synthetic_voc(args.out, num_train=args.num_train, num_val=args.num_val,
                                     image_size=args.image_size, seed=args.seed, max_objects=args.max_objects,
                                     aspect_jitter=args.aspect_jitter, overwrite=args.overwrite,
                                     workers=args.workers, min_object_size=args.min_object_size,
                                     max_object_size=args.max_object_size)
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
    from ..data.synthetic import SYNTHETIC_OPTIONS as O   # the options' one definition (ranges, defaults)

    def opt(p, name, **kw):
        key = name.lstrip("-").replace("-", "_")
        p.add_argument(name, type=flag(O[key]), default=O[key].default, **kw)

    p = sub.add_parser("make-synthetic-voc", help="write a small VOC-format shapes detection data set")
    p.add_argument("out", help="output folder, new or empty (gets classes.txt, VOCsynth/ and the "
                               "SYNTHETIC_COMPLETE marker)")
    opt(p, "--num-train")
    opt(p, "--num-val")
    opt(p, "--image-size", help="longer image side in pixels")
    opt(p, "--seed")
    opt(p, "--max-objects", help="objects per image at most")
    opt(p, "--aspect-jitter", help="shorter side drawn from [1 - j, 1] x image size (0: square images)")
    opt(p, "--min-object-size", help="smallest object box side / shorter image side")
    opt(p, "--max-object-size", help="largest object box side / shorter image side")
    opt(p, "--workers")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a synthetic data set this command made in OUT (never anything else)")
    p.set_defaults(func=run_make_synthetic)

    p = sub.add_parser("check-data", help="list problems of a VOC/COCO data set file by file (exit 1 if any)")
    p.add_argument("dataset", help="voc:PATH (VOCdevkit-like folder) or coco:PATH")
    p.add_argument("--split", default=None, help="e.g. 2007_trainval, val2017 (default: every split)")
    p.add_argument("--classes", default=None,
                   help="VOC class-list file (default: ROOT/classes.txt or the 20 VOC classes)")
    p.add_argument("--no-decode", action="store_true",
                   help="do not decode images (faster: checks each image's header, size and end marker only)")
    p.add_argument("--workers", type=flag(workers_spec()), default=4)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_check_data)
