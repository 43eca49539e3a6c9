"""Dataset readers on tiny hand-built folders with known answers, and on the shared photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskscope.core.model.view import ClassifierView
from maskscope.data import (
    VOC,
    Coco128,
    CocoJson,
    DatasetError,
    ImageFolder,
    ImageNetSamples,
    ImageNetVal,
    boxes_in_view,
    decode_rle,
    decode_rle_string,
    detect_format,
    ground_truth,
    open_dataset,
)


def write_image(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (120, 60, 30)).save(path)
    return path


def write_json(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))
    return path


def xml_annotation(width: int, height: int, objects: list[tuple[str, int, int, int, int, int]]) -> str:
    parts = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x0}</xmin>"
        f"<ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
        for name, x0, y0, x1, y1, difficult in objects
    )
    size = f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
    return f"<annotation>{size}{parts}</annotation>"


def rectangle(size: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]) -> torch.Tensor:
    area = torch.zeros(size, dtype=torch.bool)
    area[rows[0] : rows[1], cols[0] : cols[1]] = True
    return area


# --- a folder of photos -------------------------------------------------------------------------


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    for rel in ("cat/a.png", "cat/b.jpg", "dog/a.png", "x.png"):
        write_image(tmp_path / "photos" / rel, 8, 6)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    return tmp_path / "photos"


def test_folder_labels_from_subfolders(photo_folder: Path) -> None:
    dataset = ImageFolder(photo_folder)
    assert [(s.name, s.labels) for s in dataset] == [
        ("cat/a", ["cat"]), ("cat/b", ["cat"]), ("dog/a", ["dog"]), ("x", [])
    ]  # fmt: skip
    assert dataset.class_names == ["cat", "dog"]
    assert dataset.label_of(1, ["tabby", "dog"]) == "dog" and dataset.label_of(0, ["tabby", "dog"]) is None


def test_folder_labels_from_csv_with_repeats_and_semicolons(photo_folder: Path, tmp_path: Path) -> None:
    table = tmp_path / "labels.csv"
    table.write_text("file,label\nx.png,cat;dog\ncat/a.png,bird\ncat/a.png,fox\n")
    dataset = ImageFolder(photo_folder, labels_csv=table)
    labels = {s.name: s.labels for s in dataset}
    assert labels == {"cat/a": ["bird", "fox"], "cat/b": [], "dog/a": [], "x": ["cat", "dog"]}
    assert dataset.class_names == ["bird", "cat", "dog", "fox"]


def test_folder_label_map(photo_folder: Path, tmp_path: Path) -> None:
    mapping = write_json(tmp_path / "map.json", {"cat": [281, 282], "dog": [151]})
    dataset = ImageFolder(photo_folder, label_map=mapping)
    names = [f"class_{i}" for i in range(1000)]
    assert [dataset.label_of(i, names) for i in (281, 282, 151, 0)] == ["cat", "cat", "dog", None]
    with pytest.raises(DatasetError, match="'horse' is not a class"):
        ImageFolder(photo_folder, label_map=write_json(tmp_path / "bad.json", {"horse": [339]}))
    with pytest.raises(DatasetError, match="mapped to both"):
        ImageFolder(photo_folder, label_map=write_json(tmp_path / "twice.json", {"cat": [1], "dog": [1]}))
    (tmp_path / "broken.json").write_text('{"cat": [281')
    with pytest.raises(DatasetError, match="broken.json: not JSON"):
        ImageFolder(photo_folder, label_map=tmp_path / "broken.json")
    with pytest.raises(DatasetError, match="list.json: expected a label map"):
        ImageFolder(photo_folder, label_map=write_json(tmp_path / "list.json", [["cat", 281]]))


def test_folder_errors(tmp_path: Path, photo_folder: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no images"):
        ImageFolder(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such folder"):
        ImageFolder(tmp_path / "missing")
    table = tmp_path / "labels.csv"
    table.write_text("file,label\ngone.png,cat\n")
    with pytest.raises(DatasetError, match="'gone.png' is not an image"):
        ImageFolder(photo_folder, labels_csv=table)
    table.write_text("name,class\nx.png,cat\n")
    with pytest.raises(DatasetError, match="'file' and 'label'"):
        ImageFolder(photo_folder, labels_csv=table)


# --- ImageNet validation layout ------------------------------------------------------------------


@pytest.fixture
def imagenet_val(tmp_path: Path) -> Path:
    """One 40×20 photo: a tench box (0-based inclusive 14..25 × 4..13) and a difficult goldfish."""
    root = tmp_path / "imagenet"
    write_image(root / "val" / "ILSVRC2012_val_00000001.JPEG", 40, 20)
    (root / "xml").mkdir()
    (root / "xml" / "ILSVRC2012_val_00000001.xml").write_text(
        xml_annotation(40, 20, [("n01440764", 14, 4, 25, 13, 0), ("n01443537", 0, 0, 9, 9, 1)])
    )
    (root / "classes.csv").write_text(
        "file,class_index,synset,name\nb.jpg,1,n01443537,goldfish\na.jpg,0,n01440764,tench\n"
    )
    return root


def test_imagenet_val_boxes_labels_and_view(imagenet_val: Path) -> None:
    dataset = ImageNetVal(imagenet_val / "val", imagenet_val / "xml", classes=imagenet_val / "classes.csv")
    assert dataset.class_names == ["tench", "goldfish"]
    assert dataset.label_of(1, ["x", "y"]) == "goldfish" and dataset.label_of(2, ["x", "y"]) is None
    (sample,) = dataset
    assert sample.name == "ILSVRC2012_val_00000001" and sample.size == (20, 40)
    assert sample.labels == ["tench"]  # the goldfish is difficult
    tench, goldfish = sample.boxes
    assert (tench.label, tench.x0, tench.y0, tench.x1, tench.y1, tench.difficult) == ("tench", 14, 4, 26, 14, False)
    assert goldfish.difficult
    # short side 20 → 10 (scale 0.5): 20×10, centre crop 8 drops 6 columns left and 1 row on top.
    view = ClassifierView(resize=10, crop=8)
    assert boxes_in_view(sample.boxes, "tench", view, (20, 40)).tolist() == [[1.0, 1.0, 6.0, 5.0]]
    assert torch.equal(ground_truth(sample, "tench", view, (20, 40)), rectangle((8, 8), (1, 6), (1, 7)))
    with pytest.raises(DatasetError, match="goldfish"):
        ground_truth(sample, "goldfish", view, (20, 40))


def test_imagenet_val_default_and_text_class_lists(imagenet_val: Path, tmp_path: Path) -> None:
    dataset = ImageNetVal(imagenet_val / "val", imagenet_val / "xml")
    assert len(dataset.class_names) == 1000 and dataset.label_of(0, []) == "tench"
    assert dataset.samples[0].labels == ["tench"]
    assert dataset.class_names[134] == "crane (n02012849)" and dataset.class_names[517] == "crane (n03126707)"
    mapping = tmp_path / "LOC_synset_mapping.txt"
    mapping.write_text("n01440764 tench, Tinca tinca\nn01443537 goldfish, Carassius auratus\n")
    assert ImageNetVal(imagenet_val / "val", imagenet_val / "xml", classes=mapping).class_names == ["tench", "goldfish"]


def test_imagenet_val_errors(imagenet_val: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nowhere: annotation folder not found"):
        ImageNetVal(imagenet_val / "val", imagenet_val / "nowhere")
    xml = imagenet_val / "xml" / "ILSVRC2012_val_00000001.xml"
    xml.write_text(xml_annotation(40, 20, [("n99999999", 0, 0, 5, 5, 0)]))
    with pytest.raises(DatasetError, match="'n99999999' is not in the class list"):
        ImageNetVal(imagenet_val / "val", imagenet_val / "xml")
    xml.unlink()
    with pytest.raises(DatasetError, match="ILSVRC2012_val_00000001.JPEG: no annotation"):
        ImageNetVal(imagenet_val / "val", imagenet_val / "xml", classes=imagenet_val / "classes.csv")


def test_imagenet_val_accepts_the_shared_labels_csv(imagenet_val: Path, shared_data: Path) -> None:
    classes = shared_data / "imagenet-samples" / "labels.csv"
    dataset = ImageNetVal(imagenet_val / "val", imagenet_val / "xml", classes=classes)
    assert dataset.class_names == ImageNetVal(imagenet_val / "val", imagenet_val / "xml").class_names
    assert dataset.label_of(1, []) == "goldfish" and dataset.samples[0].labels == ["tench"]


# --- PASCAL VOC ----------------------------------------------------------------------------------


@pytest.fixture
def voc(tmp_path: Path) -> Path:
    """VOCdevkit/VOC2012 with one 40×20 photo: a dog (1-based 1..20 × 1..10), a difficult cat, and a class PNG."""
    root = tmp_path / "VOCdevkit" / "VOC2012"
    write_image(root / "JPEGImages" / "2007_000001.jpg", 40, 20)
    write_image(root / "JPEGImages" / "2007_000002.jpg", 40, 20)
    (root / "Annotations").mkdir()
    (root / "Annotations" / "2007_000001.xml").write_text(
        xml_annotation(40, 20, [("dog", 1, 1, 20, 10, 0), ("cat", 25, 12, 31, 16, 1)])
    )
    (root / "Annotations" / "2007_000002.xml").write_text(xml_annotation(40, 20, [("person", 1, 1, 40, 20, 0)]))
    for image_set, ids in (("Main", "2007_000001\n2007_000002\n"), ("Segmentation", "2007_000001\n")):
        (root / "ImageSets" / image_set).mkdir(parents=True)
        (root / "ImageSets" / image_set / "val.txt").write_text(ids)
    index = np.zeros((20, 40), dtype=np.uint8)
    index[0:10, 0:20] = 12  # dog
    index[9, 0:20] = 255  # void outline along its lower edge
    index[12:16, 25:31] = 8  # cat
    png = Image.fromarray(index, mode="P")
    png.putpalette([value for i in range(256) for value in (i, 255 - i, (7 * i) % 256)])
    (root / "SegmentationClass").mkdir()
    png.save(root / "SegmentationClass" / "2007_000001.png")
    return tmp_path / "VOCdevkit"


def test_voc_boxes_difficult_and_view(voc: Path) -> None:
    dataset = VOC(voc, split="val")
    assert len(dataset.class_names) == 20 and [s.name for s in dataset] == ["2007_000001", "2007_000002"]
    sample = dataset[0]
    assert sample.labels == ["dog"] and sample.size == (20, 40)
    dog, cat = sample.boxes
    assert (dog.x0, dog.y0, dog.x1, dog.y1, dog.difficult) == (0, 0, 20, 10, False)
    assert (cat.label, cat.x0, cat.y0, cat.x1, cat.y1, cat.difficult) == ("cat", 24, 11, 31, 16, True)
    # resize=None squeezes 40×20 into 8×8: x scale 0.2, y scale 0.4.
    view = ClassifierView(resize=None, crop=8)
    assert boxes_in_view(sample.boxes, "dog", view, (20, 40)).tolist() == [[0.0, 0.0, 3.0, 3.0]]
    assert boxes_in_view(sample.boxes, "cat", view, (20, 40)).shape == (0, 4)
    with pytest.raises(DatasetError, match="cat"):
        ground_truth(sample, "cat", view, (20, 40), kind="box")
    assert not dataset[1].has_masks and dataset[1].labels == ["person"]


def test_voc_masks_exclude_void_and_follow_the_view(voc: Path) -> None:
    dataset = VOC(voc / "VOC2012", split="val", image_set="Segmentation")
    (sample,) = dataset
    masks = sample.read_masks()
    assert sorted(masks) == ["cat", "dog"]
    expected_dog = np.zeros((20, 40), dtype=bool)
    expected_dog[0:9, 0:20] = True
    assert np.array_equal(masks["dog"], expected_dog) and masks["cat"].sum() == 4 * 6
    # short side 20 → 10: the dog's 9 rows × 20 columns become rows 0..4 × columns 0..9, then the
    # 8×8 centre crop starts at row 1, column 6.
    area = ground_truth(sample, "dog", ClassifierView(resize=10, crop=8), (20, 40))
    assert torch.equal(area, rectangle((8, 8), (0, 3), (0, 4)))


def test_voc_label_map_and_errors(voc: Path, tmp_path: Path) -> None:
    dataset = VOC(voc, label_map=write_json(tmp_path / "map.json", {"dog": [151, 152], "cat": [281]}))
    assert [dataset.label_of(i, []) for i in (151, 152, 281, 3)] == ["dog", "dog", "cat", None]
    with pytest.raises(DatasetError, match="'unicorn' is not a class"):
        VOC(voc, label_map=write_json(tmp_path / "bad.json", {"unicorn": [1]}))
    with pytest.raises(DatasetError, match="split 'test' not found"):
        VOC(voc, split="test")
    with pytest.raises(DatasetError, match="not a VOC folder"):
        VOC(tmp_path)
    (voc / "VOC2012" / "Annotations" / "2007_000002.xml").write_text(xml_annotation(4, 4, [("dragon", 1, 1, 2, 2, 0)]))
    with pytest.raises(DatasetError, match="'dragon' is not a VOC class"):
        VOC(voc)
    (voc / "VOC2012" / "JPEGImages" / "2007_000001.jpg").unlink()
    with pytest.raises(DatasetError, match="2007_000001.jpg: image not found"):
        VOC(voc, split="val", image_set="Segmentation")


# --- COCO JSON -----------------------------------------------------------------------------------


def encode_runs(mask: np.ndarray) -> list[int]:
    """Column-major runs of 0s and 1s, 0s first (COCO's uncompressed RLE)."""
    runs, current = [0], False
    for value in mask.T.reshape(-1):
        if value != current:
            runs.append(0)
            current = value
        runs[-1] += 1
    return runs


def compress_runs(runs: list[int]) -> str:
    """COCO's compressed string: deltas to the run two before (from the fourth), 5-bit groups."""
    text = []
    for i, run in enumerate(runs):
        value = run - runs[i - 2] if i > 2 else run
        more = True
        while more:
            group = value & 0x1F
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            text.append(chr(group + (0x20 if more else 0) + 48))
    return "".join(text)


PERSON = np.array(
    [
        [0, 0, 0, 0, 0, 0, 1, 1],
        [0, 1, 1, 0, 0, 0, 1, 1],
        [0, 1, 1, 1, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0, 1],
    ],
    dtype=bool,
)


def test_rle_decoding() -> None:
    # worked by hand: 3, 2 and 40 = 8 + 1·32 as written; the 4th run is stored as 1 − 2 = −1
    # (31 with the sign bit).
    assert decode_rle_string("32X1O") == [3, 2, 40, 1]
    runs = encode_runs(PERSON)
    assert sum(runs) == 48 and runs[:4] == [7, 2, 4, 3]  # column 1 holds rows 1–2, column 2 rows 1–3
    assert decode_rle_string(compress_runs(runs)) == runs
    assert np.array_equal(decode_rle({"size": [6, 8], "counts": runs}, (6, 8)), PERSON)
    long = [1000, 3, 70000, 2, 5]
    assert decode_rle_string(compress_runs(long)) == long
    with pytest.raises(DatasetError, match="do not cover"):
        decode_rle({"size": [6, 8], "counts": [3, 4]}, (6, 8))


@pytest.fixture
def coco(tmp_path: Path) -> Path:
    write_image(tmp_path / "coco" / "images" / "a.png", 8, 6)
    write_image(tmp_path / "coco" / "images" / "b.png", 8, 6)
    return write_json(
        tmp_path / "coco" / "instances.json",
        {
            "images": [
                {"id": 1, "file_name": "a.png", "width": 8, "height": 6},
                {"id": 2, "file_name": "b.png", "width": 8, "height": 6},
            ],
            "categories": [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
            "annotations": [
                {"id": 1, "image_id": 1, "category_id": 18, "bbox": [1, 1, 4, 3], "iscrowd": 0,
                 "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]]},
                {"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, 0, 7, 6], "iscrowd": 0,
                 "segmentation": {"size": [6, 8], "counts": compress_runs(encode_runs(PERSON))}},
                {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 4, 3, 2], "iscrowd": 1,
                 "segmentation": {"size": [6, 8], "counts": [4, 2, 42]}},
                {"id": 4, "image_id": 2, "category_id": 18, "bbox": [0, 0, 8, 6], "iscrowd": 1,
                 "segmentation": {"size": [6, 8], "counts": [0, 48]}},
            ],
        },
    )  # fmt: skip


def test_coco_json_boxes_masks_and_crowds(coco: Path) -> None:
    dataset = CocoJson(coco, coco.parent / "images")
    assert dataset.class_names == ["person", "dog"]  # by category id
    first, second = dataset
    assert first.name == "a" and first.labels == ["dog", "person"] and first.size == (6, 8)
    assert [(b.label, b.x0, b.y0, b.x1, b.y1, b.difficult) for b in first.boxes] == [
        ("dog", 1, 1, 5, 4, False), ("person", 1, 0, 8, 6, False), ("person", 0, 4, 3, 6, True)
    ]  # fmt: skip
    masks = first.read_masks()
    expected_dog = np.zeros((6, 8), dtype=bool)
    expected_dog[1:5, 1:6] = True  # PIL fills the polygon including its outline
    assert np.array_equal(masks["dog"], expected_dog)
    assert np.array_equal(masks["person"], PERSON)  # the crowd region is left out
    assert second.labels == [] and not second.has_masks and second.boxes[0].difficult
    # short side 6 → 12 (scale 2): 12×16, centre crop 8 starts at row 2, column 4.
    view = ClassifierView(resize=12, crop=8)
    assert boxes_in_view(first.boxes, "dog", view, (6, 8)).tolist() == [[0.0, 0.0, 5.0, 5.0]]
    assert torch.equal(ground_truth(first, "dog", view, (6, 8), kind="box"), rectangle((8, 8), (0, 6), (0, 6)))
    assert torch.equal(ground_truth(first, "dog", view, (6, 8)), rectangle((8, 8), (0, 8), (0, 8)))
    with pytest.raises(DatasetError, match=r"no \(non-difficult\) box of 'dog'"):
        ground_truth(second, "dog", view, (6, 8), kind="box")


def test_coco_json_label_map_and_errors(coco: Path, tmp_path: Path) -> None:
    dataset = CocoJson(coco, coco.parent / "images", label_map=write_json(tmp_path / "map.json", {"dog": [151]}))
    assert dataset.label_of(151, []) == "dog" and dataset.label_of(0, []) is None
    with pytest.raises(DatasetError, match="image folder not found"):
        CocoJson(coco, tmp_path / "nowhere")
    (coco.parent / "images" / "b.png").unlink()
    with pytest.raises(DatasetError, match="b.png: image of instances.json not found"):
        CocoJson(coco, coco.parent / "images")
    broken = write_json(tmp_path / "broken.json", {"images": []})
    with pytest.raises(DatasetError, match="not a COCO instances file"):
        CocoJson(broken, coco.parent / "images")


def test_coco_json_accepts_the_shared_imagenet_to_coco_map(tmp_path: Path, shared_data: Path) -> None:
    names = Coco128(shared_data / "coco128").class_names
    write_image(tmp_path / "a.png", 4, 4)
    annotations = write_json(
        tmp_path / "instances.json",
        {
            "images": [{"id": 1, "file_name": "a.png", "width": 4, "height": 4}],
            "categories": [{"id": i + 1, "name": name} for i, name in enumerate(names)],
            "annotations": [],
        },
    )
    dataset = CocoJson(annotations, tmp_path, label_map=shared_data / "coco128" / "imagenet_to_coco.json")
    assert dataset.label_of(207, []) == "dog" and dataset.label_of(281, []) == "cat"  # golden retriever, tabby


# --- open_dataset ----------------------------------------------------------------------------------


def test_open_dataset_detects_and_dispatches(photo_folder: Path, voc: Path, coco: Path, imagenet_val: Path) -> None:
    assert detect_format(voc) == "voc" and detect_format(photo_folder) == "folder" and detect_format(coco) == "coco"
    assert isinstance(open_dataset(voc, split="val"), VOC)
    assert isinstance(open_dataset(str(photo_folder)), ImageFolder)
    assert isinstance(open_dataset(coco, images=coco.parent / "images"), CocoJson)
    opened = open_dataset(imagenet_val / "val", format="imagenet-val", annotations=imagenet_val / "xml")
    assert isinstance(opened, ImageNetVal) and opened[0].labels == ["tench"]
    assert isinstance(open_dataset(voc / "VOC2012" / "JPEGImages", format="folder"), ImageFolder)
    with pytest.raises(DatasetError, match="needs images="):
        open_dataset(coco)
    with pytest.raises(DatasetError, match="needs annotations="):
        open_dataset(imagenet_val / "val", format="imagenet-val")
    with pytest.raises(DatasetError, match="unknown dataset format 'yolo'"):
        open_dataset(photo_folder, format="yolo")
    with pytest.raises(DatasetError, match="imagenet-sample: no such file or folder, and not a dataset name"):
        open_dataset("imagenet-sample")


def test_open_dataset_named_sets_under_the_data_root(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MASKSCOPE_DATA", str(shared_data))
    assert isinstance(open_dataset("coco128"), Coco128)
    assert open_dataset("coco128", masks="semantic").masks == "semantic"
    assert isinstance(open_dataset(shared_data / "imagenet-samples"), ImageNetSamples)
    with pytest.raises(DatasetError, match="coco128: not found at"):
        open_dataset("coco128", root=tmp_path)


def test_coco128_splits_partition_the_photos(shared_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("MASKSCOPE_DATA", str(shared_data))
    both = {sample.path for sample in open_dataset("coco128")}
    train = {sample.path for sample in open_dataset("coco128:train2017")}
    val = {sample.path for sample in open_dataset("coco128:val2017")}
    assert train and val and not train & val and train | val == both
    assert all(path.parent.name == "val2017" for path in val)
    with pytest.raises(DatasetError, match="no split 'test2017'"):
        open_dataset("coco128:test2017")
    with pytest.raises(DatasetError, match="only coco128 has splits"):
        open_dataset("imagenet-samples:val")


# --- the shared photos -----------------------------------------------------------------------------


@pytest.mark.parametrize("masks", ["polygons", "semantic"])
def test_coco128_masks_overlap_the_boxes_of_their_class(shared_data: Path, masks: str) -> None:
    dataset = Coco128(shared_data / "coco128", masks=masks)
    (sample,) = [s for s in dataset if s.name == "000000000009"]
    assert sample.labels == ["bowl", "broccoli", "orange"]
    found = sample.read_masks()
    for label in sample.labels:
        boxes = torch.zeros(sample.size, dtype=torch.bool)
        for box in sample.boxes:
            if box.label == label:
                boxes[round(box.y0) : round(box.y1), round(box.x0) : round(box.x1)] = True
        mask = torch.from_numpy(found[label])
        inside = (mask & boxes).sum() / mask.sum()
        assert mask.sum() > 500 and inside > 0.9, f"{label}: {inside:.2f} of the mask inside its boxes"
        view = ClassifierView()
        in_view = ground_truth(sample, label, view, sample.size)
        box_view = ground_truth(sample, label, view, sample.size, kind="box")
        assert (in_view & box_view).sum() > 0.8 * in_view.sum()


def test_imagenet_samples_label_of_names_each_photo(shared_data: Path) -> None:
    dataset = ImageNetSamples(shared_data / "imagenet-samples")
    assert len(dataset) == 1000
    for sample in dataset:
        (name,) = sample.labels
        assert dataset.label_of(dataset.class_indices[name], []) == name
