"""Running the model: the classifier wrapper and its inference engines, the classifier's view of
a photo, target resolution, groups of classes, ONNX models and FGVis's bounded (defended) model."""
