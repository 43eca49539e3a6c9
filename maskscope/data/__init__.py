"""Image IO and datasets: a common :class:`Dataset` of samples with labels, boxes and masks."""

from maskscope.data.coco128 import Coco128
from maskscope.data.dataset import Dataset, DatasetError, ObjectBox, Sample, boxes_in_view, ground_truth
from maskscope.data.imagenet_samples import ImageNetSamples
from maskscope.data.images import ImageLoadError, list_images, load_image

__all__ = [
    "Coco128",
    "Dataset",
    "DatasetError",
    "ImageLoadError",
    "ImageNetSamples",
    "ObjectBox",
    "Sample",
    "boxes_in_view",
    "ground_truth",
    "list_images",
    "load_image",
]
