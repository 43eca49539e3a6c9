"""Image IO and datasets: a common :class:`Dataset` of samples with labels, boxes and masks."""

from maskscope.data.coco128 import Coco128
from maskscope.data.coco_json import CocoJson, decode_rle, decode_rle_string
from maskscope.data.dataset import Dataset, DatasetError, ObjectBox, Sample, box_area, boxes_in_view, ground_truth
from maskscope.data.folder import ImageFolder
from maskscope.data.imagenet_samples import ImageNetSamples
from maskscope.data.imagenet_val import ImageNetVal
from maskscope.data.images import ImageLoadError, list_images, load_image
from maskscope.data.label_map import read_label_map
from maskscope.data.registry import data_root, detect_format, open_dataset
from maskscope.data.voc import VOC, VOC_CLASSES

__all__ = [
    "VOC",
    "VOC_CLASSES",
    "Coco128",
    "CocoJson",
    "Dataset",
    "DatasetError",
    "ImageFolder",
    "ImageLoadError",
    "ImageNetSamples",
    "ImageNetVal",
    "ObjectBox",
    "Sample",
    "box_area",
    "boxes_in_view",
    "data_root",
    "decode_rle",
    "decode_rle_string",
    "detect_format",
    "ground_truth",
    "list_images",
    "load_image",
    "open_dataset",
    "read_label_map",
]
