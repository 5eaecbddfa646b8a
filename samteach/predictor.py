"""SamPredictor: encode an image once, then answer prompt after prompt in milliseconds.

Same methods, arguments, return types and shapes as Meta's ``SamPredictor``, so the official
notebooks run unchanged; plus ``set_image_batch`` / ``predict_batch`` for K prompts on each of
B images in one decoder call (SAM's "one embedding, many prompts").

Shapes: B images, K prompts per image, N points per prompt, M masks per prompt,
H/W the original image, h/w the low-res logits (4x the embedding grid: 256 for 1024 px).
"""


import numpy as np
import torch

from .fast import click as fast_click
from .fast import is_fast
from .modeling import Sam
from .utils.arguments import (
    ImageNotSetError,
    as_array,
    validate_box,
    validate_boxes,
    validate_choice,
    validate_image,
    validate_inside,
    validate_labels,
    validate_mask_input,
    validate_points,
    validate_prompt_tensors,
)
from .utils.transforms import ResizeLongestSide


class SamPredictor:
    """Interactive segmentation with a cached image embedding."""

    def __init__(self, sam_model: Sam, resize: str = "once", bf16: bool = False,
                 text_encoder=None) -> None:
        """A fast model (``build_sam``'s default) answers prompts on one image with
        :mod:`samteach.fast.click` (the decoder's math re-associated, layer 0 cached per image):
        the same low-res logits and IoUs as the model's ``mask_decoder``.

        ``resize`` brings the low-res logits to the image's size: ``"once"``, one bilinear
        resize sampling each pixel where Meta's two steps map it (faster; the masks differ from
        Meta's on a few border pixels, see ``fast.click.upscale_to_original``), or ``"twice"``,
        ``Sam.postprocess_masks`` as Meta's predictor does it, to the pixel.

        ``bf16=True`` runs the image encoder under bfloat16 autocast: an opt-in for encoding
        many photos on a CPU with bf16 instructions. The embedding comes back as fp32; masks
        differ from fp32's on some pixels (benchmarks/bench_vs_official.py measures both).

        ``text_encoder`` turns the words of ``predict(text=...)`` into the CLIP embeddings the
        model was trained with: anything with ``embed_text(list[str]) -> (B, D)`` (a
        :class:`~samteach.text.TinyClip`, or :class:`~samteach.text.HFClip` around a Hugging
        Face CLIP). None: samteach's shipped ``tiny_clip``, loaded at the first text prompt."""
        if not isinstance(sam_model, Sam):
            raise TypeError(f"sam_model must be a samteach Sam (see samteach.build_sam); got "
                            f"{type(sam_model).__name__}")
        validate_choice(resize, "resize", ("once", "twice"))
        if not isinstance(bf16, bool):
            raise TypeError(f"bf16 must be True or False; got {bf16!r}")
        self.model = sam_model
        self.resize, self.bf16 = resize, bf16
        self.text_encoder = text_encoder
        self.transform = ResizeLongestSide(sam_model.image_encoder.img_size)
        self.reset_image()

    # ---------------------------------------------------------------- images
    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Encode one (H, W, 3) uint8 image and cache its embedding."""
        self.set_image_batch([image], image_format)

    def set_image_batch(self, images: list[np.ndarray], image_format: str = "RGB") -> None:
        """Encode several (H, W, 3) uint8 images (any sizes) in one encoder pass."""
        if not isinstance(images, (list, tuple)) or not images:
            raise TypeError(f"images must be a non-empty list of (H, W, 3) uint8 arrays; got "
                            f"{type(images).__name__}")
        resized = []
        for image in images:
            image = validate_image(image, image_format)
            if image_format != self.model.image_format:
                image = image[..., ::-1]  # BGR <-> RGB
            resized.append(self.transform.apply_image(np.ascontiguousarray(image)))
        tensors = [torch.as_tensor(r, device=self.device).permute(2, 0, 1) for r in resized]
        self._encode(tensors, [tuple(image.shape[:2]) for image in images])

    @torch.no_grad()
    def set_torch_image(
        self, transformed_image: torch.Tensor, original_image_size: tuple[int, ...]
    ) -> None:
        """Encode a (1, 3, H', W') image already resized by ``ResizeLongestSide``."""
        size = self.model.image_encoder.img_size
        if not isinstance(transformed_image, torch.Tensor):
            raise TypeError(f"transformed_image must be a torch.Tensor; got "
                            f"{type(transformed_image).__name__}")
        shape = tuple(transformed_image.shape)
        if len(shape) != 4 or shape[:2] != (1, 3) or max(shape[2:]) != size:
            raise ValueError(f"transformed_image must be (1, 3, H', W') with longest side {size} "
                             f"(use predictor.transform.apply_image); got {shape}")
        self._encode([transformed_image[0]], [tuple(original_image_size)])

    @torch.no_grad()
    def _encode(self, images: list[torch.Tensor], original_sizes: list[tuple[int, int]]) -> None:
        """(3, H', W') resized images -> cached (B, C, h, w) features and their sizes."""
        self.reset_image()
        batch = torch.stack([self.model.preprocess(image.float()) for image in images])
        with torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            self.features = self.model.image_encoder(batch).float()
        stem = self.model.image_encoder.high_res_stem  # SAM 2's fine maps, where the model has them
        self.high_res_features = None if stem is None else stem(batch)
        self._dense_pe = self.model.prompt_encoder.get_dense_pe()  # the same for every prompt
        if is_fast(self.model) and len(images) == 1:  # the clicks' per-image work, done once
            no_mask = self.model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
            self._cache = fast_click.cache_image(self.model.mask_decoder, self.features,
                                                 self._dense_pe, no_mask,
                                                 self.high_res_features)
        self._original_sizes = [tuple(int(s) for s in size) for size in original_sizes]
        self._input_sizes = [tuple(image.shape[-2:]) for image in images]
        if len(images) == 1:
            self.original_size, self.input_size = self._original_sizes[0], self._input_sizes[0]
        self.is_image_set = True

    # ---------------------------------------------------------------- prompts
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        *,
        text: str | torch.Tensor | None = None,
        text_click: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for one prompt on the cached image, in original pixel coordinates.

        Args:
            point_coords: (N, 2) pixel (x, y) in the original image.
            point_labels: (N,) 1 foreground, 0 background (also -1, 2, 3; see PromptEncoder).
            box: (4,) x0, y0, x1, y1 in the original image.
            mask_input: (1, h, w) low-res logits from an earlier call (refinement).
            multimask_output: three masks (use for a single ambiguous click) or one.
            return_logits: logits instead of booleans.
            text: what to segment, in words ("the blue liquid"), alone or with the other
                prompts -- for models trained with text prompts (SAM §7.5); or a (D,) CLIP
                embedding itself (e.g. of an object's crop, as in training).
            text_click: with ``text`` as the only sparse prompt, also click (label 1) where the
                words point, the peak of :meth:`ground_text` (samteach's own, not the paper's).

        Returns:
            masks (M, H, W), iou_predictions (M,), low_res_masks (M, h, w) numpy arrays.
        """
        self._require_single_image("predict")
        text_embedding = None  # (1, D), made once: the own click's map and the token share it
        if text_click:
            if text is None or point_coords is not None or point_labels is not None \
                    or box is not None:
                raise ValueError("text_click adds the model's own click to a text prompt given "
                                 "alone: pass text and no points or box (once you click, the "
                                 "text stays and text_click goes)")
            text_embedding = self._text_embedding(text)
            point_coords = self.ground_text(text_embedding[0])[1]  # (1, 2)
            point_labels = np.ones(1, dtype=np.int64)
        original = self.original_size
        coords = labels = boxes = masks = None
        if point_coords is not None or point_labels is not None:
            if point_coords is None:
                raise ValueError("point_coords must be given with point_labels")
            coords, labels = validate_points(point_coords, point_labels, original)
            coords = self._tensor(self.transform.apply_coords(coords, original))[None]  # (1,N,2)
            labels = torch.as_tensor(labels, dtype=torch.int, device=self.device)[None]  # (1, N)
        if box is not None:
            box = validate_box(box, original)
            boxes = self._tensor(self.transform.apply_boxes(box, original))  # (1, 4)
        if mask_input is not None:
            size = self.model.prompt_encoder.mask_input_size
            masks = self._tensor(validate_mask_input(mask_input, size, ()))[None]  # (1, 1, h, w)
        if text is not None and text_embedding is None:
            text_embedding = self._text_embedding(text)  # (1, D)
        outputs = self.predict_torch(coords, labels, boxes, masks, multimask_output, return_logits,
                                     text=text_embedding)
        return tuple(x[0].detach().cpu().numpy() for x in outputs)

    def _text_embedding(self, text: str | torch.Tensor) -> torch.Tensor:
        """A caption or a (D,) CLIP embedding -> (1, D), as ``predict`` takes it."""
        if isinstance(text, torch.Tensor):
            if text.dim() != 1:
                raise ValueError(f"text given as an embedding must be a (D,) tensor; got shape "
                                 f"{tuple(text.shape)}")
            return text.float().to(self.device)[None]  # (1, D)
        return self.embed_text(text)  # (1, D)

    @torch.no_grad()
    def ground_text(self, text: str | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Where the words point on the cached image (:mod:`samteach.text.grounding`).

        Args:
            text: a caption or a (D,) CLIP embedding, as in :meth:`predict`.

        Returns:
            grounding (h, w): the cosine of the text token with each location of the image
            embedding (over the padded input, as the decoder sees it); point (1, 2): pixel
            (x, y) in the original image, the centre of the best location inside the image.
        """
        from .text.grounding import grounding_map, peak_point

        self._require_single_image("ground_text")
        token = self.model.prompt_encoder.embed_text(self._text_embedding(text))  # (1, C)
        grounding = grounding_map(token, self.features)[0]  # (h, w)
        x, y = peak_point(grounding, self.input_size, self.model.image_encoder.img_size)
        (in_h, in_w), (h, w) = self.input_size, self.original_size
        return grounding.cpu().numpy(), np.array([[x * w / in_w, y * h / in_h]])  # image's px

    def embed_text(self, text: str | list[str]) -> torch.Tensor:
        """Words -> (B, D) CLIP text embeddings, by ``text_encoder`` (for ``predict_torch``)."""
        self.model.prompt_encoder.require_text_prompts()
        if isinstance(text, str):
            text = [text]
        if not isinstance(text, (list, tuple)) or not text \
                or not all(isinstance(t, str) for t in text):
            raise TypeError(f"text must be a string (or a list of them), the words of what to "
                            f"segment; got {type(text).__name__}")
        with torch.no_grad():
            return self.clip().embed_text(list(text)).to(self.device)

    def clip(self):
        """The CLIP of the text prompts: ``text_encoder``, or the shipped ``tiny_clip``, loaded
        the first time it is needed."""
        if self.text_encoder is None:
            from .text.clip import load_clip

            self.text_encoder = load_clip().to(self.device)
        return self.text_encoder

    @torch.no_grad()
    def predict_torch(
        self,
        point_coords: torch.Tensor | None,
        point_labels: torch.Tensor | None,
        boxes: torch.Tensor | None = None,
        mask_input: torch.Tensor | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        *,
        text: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Masks for K prompts on the cached image, prompts already in the resized frame.

        Args:
            point_coords: (K, N, 2), transformed with ``predictor.transform.apply_coords_torch``.
            point_labels: (K, N).
            boxes: (K, 4), transformed with ``apply_boxes_torch``.
            mask_input: (K, 1, h, w) low-res logits.
            text: (K, D) CLIP text embeddings (:meth:`embed_text`).

        Returns:
            masks (K, M, H, W), iou_predictions (K, M), low_res_masks (K, M, h, w) tensors.
        """
        self._require_single_image("predict_torch")
        validate_prompt_tensors(point_coords, point_labels, boxes, mask_input, self.input_size,
                             self.model.prompt_encoder.mask_input_size, text)
        low_res, iou = self._decode(point_coords, point_labels, boxes, mask_input,
                                    multimask_output, text)
        masks = self._postprocess(low_res, 0, return_logits)
        return masks, iou, low_res

    def predict_batch(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """K prompts on each of the B images of ``set_image_batch``, in one decoder call.

        Args:
            point_coords: (B, K, N, 2) pixel (x, y), each in its own original image.
            point_labels: (B, K, N).
            boxes: (B, K, 4).
            mask_input: (B, K, 1, h, w) low-res logits.

        Returns:
            Per image b: masks (K, M, H_b, W_b), iou_predictions (K, M), low_res (K, M, h, w).
        """
        self._require_image("predict_batch")
        B = len(self._original_sizes)
        coords = labels = box_t = masks = None
        if point_coords is not None or point_labels is not None:
            coords, labels = self._batch_points(point_coords, point_labels, B)
        if boxes is not None:
            box_t = self._batch_boxes(boxes, B)
        counts = {name: x.shape[0] // B for name, x in (("point_coords", coords), ("boxes", box_t))
                  if x is not None}
        if len(set(counts.values())) > 1:
            raise ValueError(f"point_coords and boxes must hold the same number K of prompts per "
                             f"image; got {counts}")
        if not counts and mask_input is None:
            raise ValueError("predict_batch needs prompts: point_coords with point_labels, "
                             "boxes, or mask_input")
        K = next(iter(counts.values()), None)
        if mask_input is not None:
            size = self.model.prompt_encoder.mask_input_size
            if K is None:  # masks alone: K is whatever they bring
                K = np.shape(mask_input)[1] if np.ndim(mask_input) == 5 else 1
            masks = self._tensor(validate_mask_input(mask_input, size, (B, K))).flatten(0, 1)
        with torch.no_grad():
            low_res, iou = self._decode(coords, labels, box_t, masks, multimask_output)
        low_res, iou = low_res.unflatten(0, (B, -1)), iou.unflatten(0, (B, -1))  # (B, K, ...)
        out_masks = [self._postprocess(low_res[b], b, return_logits).cpu().numpy()
                     for b in range(B)]
        return out_masks, list(iou.cpu().numpy()), list(low_res.cpu().numpy())

    def _batch_points(self, point_coords, point_labels, B: int):
        if point_coords is None or point_labels is None:
            raise ValueError("point_coords and point_labels must be given together")
        coords = as_array(point_coords, "point_coords", "a (B, K, N, 2) array")
        if coords.ndim != 4 or coords.shape[0] != B or coords.shape[-1] != 2:
            raise ValueError(f"point_coords must be (B, K, N, 2) with B = {B} images; got "
                             f"shape {coords.shape}")
        labels = validate_labels(point_labels, coords.shape[2])
        if labels.shape != coords.shape[:3]:
            raise ValueError(f"point_labels must be (B, K, N) = {coords.shape[:3]}; got "
                             f"{labels.shape}")
        resized = []
        for b, size in enumerate(self._original_sizes):
            validate_inside(coords[b], size, "point_coords", "image")
            resized.append(self.transform.apply_coords(coords[b], size))
        coords_t = self._tensor(np.stack(resized)).flatten(0, 1)  # (B*K, N, 2)
        labels_t = torch.as_tensor(labels, dtype=torch.int, device=self.device).flatten(0, 1)
        return coords_t, labels_t

    def _batch_boxes(self, boxes, B: int) -> torch.Tensor:
        array = as_array(boxes, "boxes", "a (B, K, 4) array")
        if array.ndim != 3 or array.shape[0] != B or array.shape[-1] != 4:
            raise ValueError(f"boxes must be (B, K, 4) with B = {B} images; got shape "
                             f"{array.shape}")
        resized = []
        for b, size in enumerate(self._original_sizes):
            validate_boxes(array[b], size)
            resized.append(self.transform.apply_boxes(array[b], size))
        return self._tensor(np.stack(resized)).flatten(0, 1)  # (B*K, 4)

    def _decode(self, coords, labels, boxes, masks, multimask_output: bool, text=None):
        """Prompts (B*K, ...) image-major -> low-res logits (B*K, M, h, w) and IoUs (B*K, M)."""
        points = (coords, labels) if coords is not None else None
        sparse, dense = self.model.prompt_encoder(points=points, boxes=boxes, masks=masks,
                                                  text=text)
        if sparse.shape[0] % self.features.shape[0]:
            raise ValueError(f"the number of prompts ({sparse.shape[0]}) must be a multiple of "
                             f"the number of images ({self.features.shape[0]})")
        if self._cache is not None:
            return fast_click.predict_masks(self.model.mask_decoder, self._cache, self.features,
                                            sparse, None if masks is None else dense,
                                            multimask_output)
        return self.model.mask_decoder(
            image_embeddings=self.features,
            image_pe=self._dense_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            high_res_features=self.high_res_features,
        )

    def _postprocess(self, low_res: torch.Tensor, b: int, return_logits: bool) -> torch.Tensor:
        if self.resize == "once":
            masks = fast_click.upscale_to_original(low_res, self._input_sizes[b],
                                                   self._original_sizes[b],
                                                   self.model.image_encoder.img_size)
        else:
            masks = self.model.postprocess_masks(low_res, self._input_sizes[b],
                                                 self._original_sizes[b])
        return masks if return_logits else masks > self.model.mask_threshold

    # ---------------------------------------------------------------- state
    def get_image_embedding(self) -> torch.Tensor:
        """The cached (B, C, h, w) image embedding (B = 1 after ``set_image``)."""
        self._require_image("get_image_embedding")
        return self.features

    @property
    def device(self) -> torch.device:
        return self.model.device

    def reset_image(self) -> None:
        """Forget the cached image."""
        self.is_image_set = False
        self.features = None
        self.high_res_features = None
        self._dense_pe = None
        self._cache = None
        self.orig_h = self.orig_w = self.input_h = self.input_w = None
        self.original_size = self.input_size = None
        self._original_sizes: list[tuple[int, int]] = []
        self._input_sizes: list[tuple[int, int]] = []

    def _require_image(self, method: str) -> None:
        if not self.is_image_set:
            raise ImageNotSetError(f"{method} needs an image: call set_image(image) first")

    def _require_single_image(self, method: str) -> None:
        self._require_image(method)
        if len(self._original_sizes) != 1:
            raise ValueError(f"{method} works on one image; {len(self._original_sizes)} are set "
                             "by set_image_batch -- use predict_batch")

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.float, device=self.device)


def as_predictor(model: Sam | SamPredictor, name: str = "predictor") -> SamPredictor:
    """A ``SamPredictor`` for ``model``: itself if it is one, a new one around a ``Sam``."""
    if isinstance(model, SamPredictor):
        return model
    if isinstance(model, Sam):
        return SamPredictor(model)
    raise TypeError(f"{name} must be a samteach SamPredictor or Sam model (see "
                    f"samteach.build_sam); got {type(model).__name__}")
