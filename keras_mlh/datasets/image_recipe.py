"""How image files become a model's input: size, resize-then-crop, flips."""

import dataclasses

SMALL_BACKBONE = "small"
SMALL_IMAGE_SIZE = (64, 64)  # `from_directory`'s default
NAMED_IMAGE_SIZE = (224, 224)
NAMED_RESIZE_RATIO = 256 / 224


@dataclasses.dataclass(frozen=True)
class ImageRecipe:
    """The image size a model gets, the resize before its crop (`None`: a
    straight resize), and flips of training images.

    Example:
    >>> ImageRecipe.for_backbone("resnet50")
    ImageRecipe(image_size=(224, 224), resize_to=(256, 256), horizontal_flip=True)
    """

    image_size: tuple = SMALL_IMAGE_SIZE
    resize_to: tuple | None = None
    horizontal_flip: bool = False

    @classmethod
    def for_backbone(
        cls, backbone, image_size=None, resize_to=None, horizontal_flip=None
    ):
        """`backbone`'s standard recipe, any part given overriding it: HashNet's
        224x224 crops of 256x256 and flips for a Keras Applications name, 64x64
        images for `"small"`."""
        named = backbone != SMALL_BACKBONE
        size = tuple(image_size or (NAMED_IMAGE_SIZE if named else SMALL_IMAGE_SIZE))
        if resize_to is None and named:
            resize_to = named_resize(size)
        if resize_to is not None and (resize_to[0] < size[0] or resize_to[1] < size[1]):
            raise ValueError(
                f"--resize-size {resize_to[0]}x{resize_to[1]} is smaller than the "
                f"crop --image-size {size[0]}x{size[1]}; resize to at least the "
                "crop size."
            )
        resize_to = None if resize_to is None else tuple(resize_to)
        flip = named if horizontal_flip is None else bool(horizontal_flip)
        return cls(size, None if resize_to == size else resize_to, flip)

    def run_info(self, color_mode):
        """The recipe, with `color_mode`, as `run.json` records it."""
        cropped = self.resize_to is not None
        return {
            "image_size": list(self.image_size),
            "resize_to": list(self.resize_to) if cropped else None,
            "crop": "random in training, central otherwise" if cropped else None,
            "horizontal_flip": bool(self.horizontal_flip),
            "color_mode": color_mode,
        }

    @staticmethod
    def resize_of_run_info(info):
        """The `resize_to` of a `run.json`'s `image_recipe`, `None` if missing
        or odd (`run.json` is read leniently)."""
        size = info.get("resize_to") if isinstance(info, dict) else None
        valid = isinstance(size, list) and len(size) == 2
        return tuple(size) if valid and all(isinstance(s, int) for s in size) else None


def named_resize(size):
    """The resize before a named backbone's crop of `size`: 224 -> 256."""
    return tuple(round(side * NAMED_RESIZE_RATIO) for side in size)
