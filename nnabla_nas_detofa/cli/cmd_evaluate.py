"""``evaluate``: score a detections file (COCO results format) on a VOC or COCO split."""
import json

from .errors import UserError


def run_evaluate(args):
    from ..data.dataset import open_dataset
    from ..data.records import DataError
    from ..evaluation import ResultsError, evaluate_results, load_results
    try:
        ds = open_dataset(args.dataset, args.split, args.classes, check_images=False)  # annotations alone
        results = load_results(args.detections)
        out = evaluate_results(ds, results, args.metric, where=args.detections)
    except (DataError, ResultsError) as err:
        raise UserError(str(err)) from None
    if not args.summary:
        out.pop("summary", None)
    print(json.dumps(out, indent=1))
    return 0


def register(sub):
    p = sub.add_parser("evaluate", help="VOC mAP / COCO AP of a detections file, printed as JSON",
                       description="Detections: a JSON list of {image_id, category_id, bbox: [x, y, w, h], score} "
                                   "in original-image pixels. COCO: integer image and category ids of the "
                                   "annotation file. VOC: image_id = file stem (string), category_id = class name.")
    p.add_argument("--dataset", required=True, help="voc:PATH or coco:PATH")
    p.add_argument("--split", default=None,
                   help="e.g. 2007_test, synth_val, val2017 (default: 2007_test / val2017, else the data set's "
                        "test or val split)")
    p.add_argument("--detections", required=True, help="detections JSON file")
    p.add_argument("--metric", choices=("voc07", "voc10", "coco"), default=None,
                   help="voc07: 11-point mAP@0.5 (VOC default); voc10: all-point; coco: AP@[.5:.95] "
                        "(COCO default)")
    p.add_argument("--classes", default=None,
                   help="VOC class-list file (default: ROOT/classes.txt or the 20 VOC classes)")
    p.add_argument("--summary", action="store_true", help="include pycocotools' text summary (coco metric)")
    p.set_defaults(func=run_evaluate)
