"""Detection data: VOC/COCO readers, synthetic data, augmentation, the batch loader, checks.

Importing this package does not import nnabla or NNablaNAS; ``data.loader`` (the NNablaNAS
``DataLoader``) does.
"""
from .dataset import DEFAULT_SPLITS, FORMATS, available_splits, default_split, load_dataset, open_dataset, parse_spec
from .records import DataError, DetectionDataset, ImageRecord, Problem, make_record
from .voc import VOC_CLASSES

__all__ = ["DEFAULT_SPLITS", "FORMATS", "DetectionDataset", "available_splits", "default_split",
           "load_dataset", "open_dataset", "parse_spec", "DataError", "ImageRecord", "Problem", "make_record",
           "VOC_CLASSES"]
