"""Helpers (no tests) shared by the data and evaluation tests: write small VOC/COCO folders in the
exact on-disk formats, with whatever defects a test needs."""
import json
import os

import cv2
import numpy as np



def write_image(path, width, height, color=(40, 90, 160), ext_ok=True):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = np.zeros((height, width, 3), np.uint8)
    img[:] = color
    assert cv2.imwrite(path, img)
    return path


def voc_object(name, box, difficult="0", truncated="0", extra=""):
    """``box`` = (xmin, ymin, xmax, ymax) as written (strings or numbers); ``None`` omits a field."""
    tags = ("xmin", "ymin", "xmax", "ymax")
    coords = "".join(f"<{t}>{v}</{t}>" for t, v in zip(tags, box) if v is not None)
    dif = "" if difficult is None else ("<difficult/>" if difficult == "" else f"<difficult>{difficult}</difficult>")
    tru = "" if truncated is None else f"<truncated>{truncated}</truncated>"
    return f"<object><name>{name}</name><pose>Unspecified</pose>{tru}{dif}<bndbox>{coords}</bndbox>{extra}</object>"


def voc_xml(filename, width, height, objects, size=True):
    sz = f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>" if size else ""
    return f"<annotation><folder>VOC</folder><filename>{filename}</filename>{sz}{''.join(objects)}</annotation>"


def write_voc(root, year, images, sets, classes=None, image_ext=".jpg"):
    """``images``: {id: (width, height, [object xml strings], {"size": bool, "xml": raw text or None,
    "image": bool})}; ``sets``: {set_name: [ids]}."""
    base = os.path.join(root, "VOC" + year)
    for d in ("Annotations", "JPEGImages", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(base, d), exist_ok=True)
    for iid, spec in images.items():
        w, h, objs = spec[:3]
        opts = spec[3] if len(spec) > 3 else {}
        xml = opts.get("xml") or voc_xml(iid + image_ext, w, h, objs, size=opts.get("size", True))
        with open(os.path.join(base, "Annotations", iid + ".xml"), "w") as f:
            f.write(xml)
        if opts.get("image", True):
            write_image(os.path.join(base, "JPEGImages", iid + image_ext), w, h)
    for name, ids in sets.items():
        with open(os.path.join(base, "ImageSets", "Main", name + ".txt"), "w") as f:
            f.write("".join(i + "\n" for i in ids))
    if classes is not None:
        with open(os.path.join(root, "classes.txt"), "w") as f:
            f.write("\n".join(classes) + "\n")
    return base


def write_coco(root, split, images, annotations, categories, write_images=True):
    """``images``: [(id, file_name, width, height)]; annotations: [(image_id, category_id, [x,y,w,h], iscrowd)]."""
    os.makedirs(os.path.join(root, "annotations"), exist_ok=True)
    data = {"images": [{"id": i, "file_name": f, "width": w, "height": h} for i, f, w, h in images],
            "annotations": [{"id": k + 1, "image_id": a[0], "category_id": a[1], "bbox": list(a[2]),
                             "area": float(a[2][2] * a[2][3]), "iscrowd": int(a[3]) if len(a) > 3 else 0}
                            for k, a in enumerate(annotations)],
            "categories": [{"id": c, "name": n, "supercategory": "x"} for c, n in categories]}
    path = os.path.join(root, "annotations", f"instances_{split}.json")
    with open(path, "w") as f:
        json.dump(data, f)
    if write_images:
        for i, fname, w, h in images:
            write_image(os.path.join(root, split, fname), w, h)
    return path, data
