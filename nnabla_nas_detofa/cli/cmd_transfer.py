"""``import-weights``: an ImageNet OFA-ResNet50 supernet (once-for-all checkpoint or NNablaNAS .h5)
converted into the DetOFA supernet's backbone parameters (an .h5 for ``"pretrained"``)."""
import os

from ..space import ConfigError
from .cmd_space import add_supernet_args, supernet_config
from .errors import UserError


def run_import_weights(args):
    from ..transfer import TransferError, format_report, import_supernet, save_backbone
    cfg = supernet_config(args)
    if os.path.isdir(args.output):
        raise UserError(f"{args.output}: is a folder; give the .h5 file to write (-o OUT.h5)")
    if not args.output.endswith(".h5"):
        raise UserError(f"{args.output}: the output must be an .h5 file")
    try:
        arrays, report = import_supernet(args.source, cfg)
    except (TransferError, ConfigError) as err:
        raise UserError(str(err)) from None
    save_backbone(args.output, arrays, report)
    print(format_report(report))
    act = report["source_stem_activation"]
    extra = f', "stem_activation": "{act}"' if act != "relu" else ""
    print(f'wrote {args.output}: the backbone only; use it as "network": {{"detofa_resnet50": {{"pretrained": '
          f'"{args.output}", "width_mult": {cfg.width_mult:g}, "divisor": {cfg.divisor}{extra}}}}} (it is not a '
          f"DetOFA weight file: 'weights' refuses it)")
    return 0


def register(sub):
    p = sub.add_parser("import-weights",
                       help="convert an ImageNet OFA-ResNet50 supernet (once-for-all .pth, NNablaNAS .h5) into "
                            "the DetOFA supernet's backbone (.h5 for \"pretrained\")")
    p.add_argument("source", help="once-for-all's ofa_supernet_resnet50 (torch checkpoint, any file name) or a "
                                  "NNablaNAS ofa_resnet50 SearchNet .h5")
    p.add_argument("-o", "--output", required=True, help="the .h5 to write (atomically)")
    add_supernet_args(p)
    p.set_defaults(func=run_import_weights)
