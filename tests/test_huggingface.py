"""Hugging Face image classifiers explained as they are: tiny ViT, DeiT, Swin, ConvNeXt and ResNet
models built from configs (random weights, offline, a fraction of a second each).

``Classifier.from_huggingface`` reads the preprocessing, class names and output kind from a saved
folder or a model object; Grad-CAM and MP's layer masks find a transformer's last block and its
token grid; every method runs on the ViT; the compiled engines export the models.
"""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers", reason="transformers (in the test extra) builds the tiny models")

from maskscope import Classifier  # noqa: E402
from maskscope.core.model.view import ClassifierView  # noqa: E402
from maskscope.core.optimisation.layer_masks import LayerMaskProblem  # noqa: E402
from maskscope.errors import MissingFileError  # noqa: E402
from maskscope.methods import GradCAM, MeaningfulPerturbation, ScoreCAM  # noqa: E402
from maskscope.methods.gradcam import TokenGrid, default_layer, token_grid  # noqa: E402
from maskscope.methods.registry import get_method, method_names, resolve_method  # noqa: E402

SIZE = 32
NAMES = {0: "circle", 1: "square", 2: "background"}
TRANSFORMER = dict(image_size=SIZE, patch_size=8, num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                   intermediate_size=64)
#: a view that feeds the 32-px models whole
VIEW = ClassifierView(resize=None, crop=SIZE)
#: settings that keep each method to a fraction of a second on a 32-px image
TINY = {
    "ep": dict(steps=4, areas=(0.1,), resolution=8, smooth_sigma=4.0, max_blur=4.0, blur_levels=3),
    "fgvis": dict(steps=3, l1_weights=(1e-4, 1e-6)),
    "hipe": dict(window=8, levels=2),
    "igos": dict(steps=2, points=2, resolution=8),
    "igos++": dict(steps=2, points=2, resolution=8),
    "integrated_gradients": dict(points=4),
    "lime": dict(samples=40, segments=8),
    "mp": dict(steps=3, resolution=8, smooth_sigma=1.0, filler="blur:2"),
    "mp-g": dict(steps=3, resolution=8),
    "occlusion": dict(stride=8),
    "rise": dict(samples=64, resolution=4),
    "sliding_patch": dict(window=9, stride=8),
}


def build(kind: str, **config):
    """A tiny Hugging Face classifier of ``kind`` with three classes and random weights (seeded)."""
    torch.manual_seed(0)
    labels = dict(num_labels=3, id2label=NAMES, label2id={name: index for index, name in NAMES.items()})
    if kind == "vit":
        return transformers.ViTForImageClassification(transformers.ViTConfig(**TRANSFORMER, **labels, **config))
    if kind == "deit":
        return transformers.DeiTForImageClassificationWithTeacher(transformers.DeiTConfig(**TRANSFORMER, **labels))
    if kind == "swin":
        return transformers.SwinForImageClassification(transformers.SwinConfig(
            image_size=SIZE, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=2, **labels
        ))
    if kind == "convnext":
        return transformers.ConvNextForImageClassification(transformers.ConvNextConfig(
            image_size=SIZE, hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, **labels, **config
        ))
    if kind == "resnet":
        return transformers.ResNetForImageClassification(transformers.ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], **labels
        ))
    raise ValueError(kind)


def classifier_of(kind: str, **options) -> Classifier:
    return Classifier.from_huggingface(build(kind), mean=(0.5,) * 3, std=(0.5,) * 3, view=VIEW, **options)


@pytest.fixture(scope="module")
def vit() -> Classifier:
    return classifier_of("vit")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------- what from_huggingface reads
def test_a_saved_vit_folder_gives_its_processors_normalisation_size_and_its_class_names(tmp_path, images):
    model = build("vit")
    model.save_pretrained(tmp_path)
    processor = transformers.ViTImageProcessor(
        size={"height": SIZE, "width": SIZE}, image_mean=[0.1, 0.2, 0.3], image_std=[0.4, 0.5, 0.6]
    )
    processor.save_pretrained(tmp_path)
    classifier = Classifier.from_huggingface(tmp_path)
    torch.testing.assert_close(classifier.mean.flatten(), torch.tensor([0.1, 0.2, 0.3]))
    torch.testing.assert_close(classifier.std.flatten(), torch.tensor([0.4, 0.5, 0.6]))
    assert classifier.view == ClassifierView(resize=None, crop=SIZE)  # height/width: the whole image resized
    assert classifier.class_names == ["circle", "square", "background"]
    assert classifier.output == "softmax" and classifier.name == tmp_path.name
    # the scores are the model's own logits of the normalised images
    normalised = (images - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.eval()(normalised).logits.softmax(1)
        torch.testing.assert_close(classifier.probabilities(images), expected)


def test_a_saved_convnext_folder_gives_its_crop_percentage_and_a_multi_label_model_sigmoids(tmp_path):
    build("convnext", problem_type="multi_label_classification").save_pretrained(tmp_path)
    transformers.ConvNextImageProcessor(
        size={"shortest_edge": 48}, crop_pct=0.75, image_mean=[0.2, 0.3, 0.4], image_std=[0.3, 0.3, 0.3]
    ).save_pretrained(tmp_path)
    classifier = Classifier.from_huggingface(tmp_path)
    # below 384 px ConvNeXt resizes the short side to 48 / 0.75 = 64 and crops the centre 48×48
    assert classifier.view == ClassifierView(resize=64, crop=48, interpolation="bicubic")  # ConvNeXt's resample
    torch.testing.assert_close(classifier.mean.flatten(), torch.tensor([0.2, 0.3, 0.4]))
    assert classifier.output == "sigmoid"
    # a processor given (an object or its settings) wins over the folder's, an option over both
    given = transformers.ViTImageProcessor(size={"height": 40, "width": 40}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    assert Classifier.from_huggingface(tmp_path, processor=given).view == ClassifierView(resize=None, crop=40)
    settings = {"size": {"shortest_edge": 36}, "do_center_crop": True, "crop_size": {"height": 32, "width": 32},
                "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    assert Classifier.from_huggingface(tmp_path, processor=settings).view == ClassifierView(resize=36, crop=32)
    renamed = Classifier.from_huggingface(tmp_path, class_names=["a", "b", "c"], output="softmax")
    assert renamed.class_names == ["a", "b", "c"] and renamed.output == "softmax"


def test_a_model_without_a_processor_warns_what_it_assumed_unless_it_is_given():
    with pytest.warns(UserWarning, match=r"no image processor: assumed ImageNet mean .* 224-px view"):
        classifier = Classifier.from_huggingface(build("resnet"))  # a ResNet config has no image_size
    assert classifier.view == ClassifierView(resize=224, crop=224)
    torch.testing.assert_close(classifier.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    with pytest.warns(UserWarning, match=r"assumed a 32-px view") as caught:
        Classifier.from_huggingface(build("vit"), mean=(0.5,) * 3, std=(0.5,) * 3)  # the view from image_size
    assert "ImageNet" not in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Classifier.from_huggingface(build("vit"), mean=(0.5,) * 3, std=(0.5,) * 3, view=VIEW)


def test_a_folder_missing_a_file_names_it(tmp_path):
    with pytest.raises(MissingFileError, match="no such Hugging Face model folder"):
        Classifier.from_huggingface(tmp_path / "absent")
    with pytest.raises(MissingFileError, match="config.json"):
        Classifier.from_huggingface(tmp_path)
    build("vit").save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(MissingFileError, match="model.safetensors"):
        Classifier.from_huggingface(tmp_path)


def test_a_processor_file_that_is_not_json_is_a_one_line_error(tmp_path):
    build("vit").save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ValueError, match="preprocessor_config.json: not JSON"):
        Classifier.from_huggingface(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"do_normalize": False, "size": {"height": 32, "width": 32}}))
    plain = Classifier.from_huggingface(tmp_path)
    assert plain.mean.flatten().tolist() == [0, 0, 0] and plain.std.flatten().tolist() == [1, 1, 1]


# ---------------------------------------------------------------- the layer a transformer is explained at
@pytest.mark.parametrize(
    "kind, layer, grid",
    [
        ("vit", "vit.layers.1.layernorm_before", TokenGrid(prefix_tokens=1, grid=(4, 4))),
        ("deit", "deit.layers.1.layernorm_before", TokenGrid(prefix_tokens=2, grid=(4, 4))),  # class + distillation
        ("swin", "swin.encoder.layers.1.blocks.0.layernorm_before", TokenGrid(prefix_tokens=0, grid=(4, 4))),
        ("convnext", "convnext.encoder.stages.1", None),
        ("resnet", "resnet.encoder.stages.1", None),
    ],
)
def test_the_default_layer_is_the_last_blocks_input_tokens_or_the_last_convolution(kind, layer, grid, images):
    classifier = classifier_of(kind)
    found, reshape = default_layer(classifier, images)
    assert found == layer
    assert repr(reshape) == repr(grid)


def test_gradcams_default_on_a_vit_is_not_the_patch_embedding(vit, images):
    explanation = GradCAM(score="logit")(vit, images, target=[0, 1])
    assert explanation.coarse_map.shape == (2, 1, 4, 4)  # the 4×4 patch grid, not the embedding's output
    assert float(explanation.saliency.amax()) > 0
    named = GradCAM(layer="vit.layers.1.layernorm_before", reshape=TokenGrid(), score="logit")(vit, images, target=[0, 1])
    torch.testing.assert_close(explanation.saliency, named.saliency)


def test_score_cams_default_on_a_vit_is_gradcams_layer_on_its_grid(vit, images):
    explanation = ScoreCAM()(vit, images, target=[0, 1])
    assert explanation.coarse_map.shape == (2, 1, 4, 4)
    named = ScoreCAM(layer="vit.layers.1.layernorm_before", reshape=TokenGrid())(vit, images, target=[0, 1])
    torch.testing.assert_close(explanation.saliency, named.saliency)


class TimmLikeViT(nn.Module):
    """timm's VisionTransformer in outline: a patch embedding, ``num_prefix_tokens`` (a class
    token and four registers) and ``blocks`` of pre-norm blocks with ``norm1``/``norm2``."""

    num_prefix_tokens = 5

    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, 8, 8, stride=8)
        self.prefix = nn.Parameter(torch.zeros(1, self.num_prefix_tokens, 8))
        self.blocks = nn.Sequential(*[TimmLikeBlock() for _ in range(2)])
        self.head = nn.Linear(8, 3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(images).flatten(2).transpose(1, 2)
        tokens = self.blocks(torch.cat([self.prefix.expand(len(images), -1, -1), patches], 1))
        return self.head(tokens[:, 0])


class TimmLikeBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(8), nn.LayerNorm(8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.mlp = nn.Linear(8, 8)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        normed = self.norm1(tokens)
        tokens = tokens + self.attn(normed, normed, normed, need_weights=False)[0]
        return tokens + self.mlp(self.norm2(tokens))


def test_a_timm_like_vit_is_found_by_its_blocks_and_its_prefix_token_count():
    torch.manual_seed(0)
    classifier = Classifier(TimmLikeViT(), view=ClassifierView(resize=None, crop=16))
    images = torch.rand(2, 3, 16, 16)
    layer, reshape = default_layer(classifier, images)
    # 9 tokens would make a 3×3 grid without prefix tokens; the model's num_prefix_tokens says 5 and 2×2
    assert layer == "blocks.1.norm1" and repr(reshape) == repr(TokenGrid(prefix_tokens=5, grid=(2, 2)))
    assert GradCAM(score="logit")(classifier, images, target=[0, 1]).coarse_map.shape == (2, 1, 2, 2)


def test_token_grids_follow_the_images_aspect_ratio():
    assert repr(token_grid((1, 33, 8), (32, 64))) == repr(TokenGrid(prefix_tokens=1, grid=(4, 8)))
    assert repr(token_grid((1, 34, 8), (32, 64), prefix_tokens=2)) == repr(TokenGrid(prefix_tokens=2, grid=(4, 8)))
    assert token_grid((1, 4, 4, 8), (32, 32)).channels_last  # tokens already on a grid (timm's Swin)
    with pytest.raises(ValueError, match="form no grid"):
        token_grid((1, 7, 8), (32, 64), prefix_tokens=0)


def test_layer_masks_mask_the_patch_tokens_and_leave_the_prefix_tokens():
    problem = LayerMaskProblem.__new__(LayerMaskProblem)
    problem.prefix_tokens, problem.channels_last = 2, False
    tokens = torch.ones(1, 2 + 6, 3)
    masks = torch.arange(6, dtype=torch.float32).view(1, 1, 2, 3)
    masked = problem.masked(tokens, masks)
    assert torch.equal(masked[0, :2], tokens[0, :2])  # the class and distillation tokens
    assert masked[0, 2:, 0].tolist() == [0, 1, 2, 3, 4, 5]  # the patches row by row


@pytest.mark.parametrize("kind", ["vit", "deit"])
def test_mp_masks_a_transformers_tokens_at_the_layer_gradcam_finds(kind, images):
    classifier = classifier_of(kind)
    explanation = MeaningfulPerturbation(layer="auto", init="ones", steps=5)(classifier, images, target=[0, 1])
    assert explanation.saliency.shape == (2, SIZE, SIZE) and torch.isfinite(explanation.saliency).all()
    assert float(explanation.saliency.std()) > 0  # the mask moved
    with pytest.raises(ValueError, match="circular initialisation needs an image mask"):
        MeaningfulPerturbation(layer="auto", steps=1)(classifier, images[:1], target=[0])


# ---------------------------------------------------------------- every method, every engine
RUNNABLE = [name for name in method_names() if not resolve_method(name)[0].needs_checkpoint]


@pytest.mark.parametrize("name", RUNNABLE)
def test_every_method_runs_on_a_hugging_face_vit(name, vit, images):
    method_class, preset = resolve_method(name)
    explanation = get_method(name, **TINY.get(method_class.name, {})).explain(vit, images, target=[0, 1])
    assert_explains_the_model(explanation, vit, images)


def assert_explains_the_model(explanation, classifier: Classifier, images: torch.Tensor) -> None:
    """A finite map of each image, and the score it explains is the Hugging Face model's own
    softmax of its ``.logits`` for the target, on the images normalised by its processor's 0.5/0.5."""
    assert explanation.saliency.shape == (2, SIZE, SIZE)
    assert torch.isfinite(explanation.saliency).all()
    with torch.no_grad():
        own = classifier.module(pixel_values=(images - 0.5) / 0.5).logits.softmax(1)[[0, 1], [0, 1]]
    torch.testing.assert_close(explanation.scores_before, own, atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def compiled_cnns() -> dict[str, Classifier]:
    """The tiny ConvNeXt and ResNet with their forward-only passes on ONNX Runtime."""
    pytest.importorskip("onnxruntime")
    return {kind: classifier_of(kind, engine="onnxruntime") for kind in ("convnext", "resnet")}


@pytest.mark.parametrize("kind", ["convnext", "resnet"])
@pytest.mark.parametrize("name", RUNNABLE)
def test_every_method_runs_on_hugging_face_cnns_with_a_compiled_engine(name, kind, compiled_cnns, images):
    classifier = compiled_cnns[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback to torch, no assumed preprocessing
        explanation = get_method(name, **TINY.get(resolve_method(name)[0].name, {})).explain(
            classifier, images, target=[0, 1]
        )
    assert_explains_the_model(explanation, classifier, images)
    assert explanation.engine["engine"] == "onnxruntime"


@pytest.mark.parametrize("engine", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("kind", ["vit", "convnext", "resnet"])
def test_the_compiled_engines_export_hugging_face_models_and_agree_with_torch(kind, engine, images):
    pytest.importorskip({"onnxruntime": "onnxruntime", "openvino": "openvino"}[engine])
    reference = classifier_of(kind)
    compiled = classifier_of(kind, engine=engine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fallback to torch would warn
        with torch.no_grad():
            scores = compiled.probabilities(images)
    assert compiled.engine_record() == {"engine": engine, "precision": "float32"}  # no fallback
    with torch.no_grad():
        torch.testing.assert_close(scores, reference.probabilities(images), atol=1e-5, rtol=1e-4)
