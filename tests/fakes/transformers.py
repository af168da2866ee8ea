"""transformers: a tiny random model of the checkpoint's class, with the real repo's file set and processor config.

For each catalog entry the fake writes exactly the files the catalog names, in the Hub cache at the
pinned revision: config.json (the label set's classes as id2label), the weights under the real file
name (pytorch_model.bin as a plain torch.save state dict, as the older repos hold it, or
model.safetensors), the image processor config with the keys the real repo has (legacy keys
included: those are what the loaders must cope with), and for OneFormer a small but valid CLIP BPE
tokenizer plus the class-info file in the dataset repo shi-labs/oneformer_demo.
Where the notes only infer a real file's content (/work/research/hf_repos.md), that is said below.
The weights are random, but arranged so that the model's mask on a photo has several classes (see
"making a random model answer with several classes").
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
import transformers
from safetensors.torch import load_file
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, trainers
from transformers.convert_slow_tokenizer import bytes_to_unicode

from seggallery.backends.transformers import load_processor

from .common import (
    built_once,
    calibrate_batchnorm,
    put_in_hub_cache,
    torch_default_init,
)

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def _labels(spec) -> dict:
    names = spec.label_set.names
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


# --- one tiny configuration and the real preprocessor_config.json per model class ---------------------


def _segformer(spec):
    config = transformers.SegformerConfig(
        hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 2, 2],
        decoder_hidden_size=32, semantic_loss_ignore_index=255, **_labels(spec),
    )
    # nvidia/segformer-b0-finetuned-ade-512-512: 271 B, legacy keys (inferred from its size and history).
    processor = {
        "do_normalize": True, "do_resize": True, "feature_extractor_type": "SegformerFeatureExtractor",
        "image_mean": IMAGENET_MEAN, "image_std": IMAGENET_STD, "reduce_labels": True, "resample": 2, "size": 512,
    }
    return config, processor


def _mobilenet_v2(spec):
    config = transformers.MobileNetV2Config(
        depth_multiplier=0.25, output_stride=8, tf_padding=True, image_size=513, hidden_act="relu6",
        classifier_dropout_prob=0.8, semantic_loss_ignore_index=255, **_labels(spec),
    )
    # google/deeplabv3_mobilenet_v2_1.0_513: the same author's identical-size file, seen verbatim.
    processor = {
        "crop_size": {"height": 513, "width": 513}, "do_center_crop": True, "do_normalize": True,
        "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "MobileNetV2ImageProcessor", "image_std": [0.5, 0.5, 0.5], "resample": 2,
        "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 545},
    }
    return config, processor


def _mobilevit(spec):
    config = transformers.MobileViTConfig(
        hidden_sizes=[16, 16, 16], neck_hidden_sizes=[8, 8, 8, 8, 8, 16, 32], num_attention_heads=1,
        aspp_out_channels=16, image_size=512, **_labels(spec),
    )
    # apple/deeplabv3-mobilevit-small: the same author's identical-size (187 B) file, seen verbatim.
    processor = {
        "crop_size": 512, "do_center_crop": True, "do_flip_channels": True, "do_resize": True,
        "feature_extractor_type": "MobileViTFeatureExtractor", "resample": 2, "size": 544,
    }
    return config, processor


def _tiny_swin() -> transformers.SwinConfig:
    """The backbone of the tiny OneFormer and Mask2Former: Swin with one block per stage, four stages out."""
    return transformers.SwinConfig(
        embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7, drop_path_rate=0.0,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )


def _oneformer(spec):
    config = transformers.OneFormerConfig(
        backbone_config=_tiny_swin(), num_queries=16, hidden_dim=32, conv_dim=32, mask_dim=32,
        encoder_feedforward_dim=64, encoder_layers=1, decoder_layers=2, dim_feedforward=64,
        num_attention_heads=2, query_dec_layers=1, task_seq_len=77, text_encoder_width=32,
        text_encoder_num_layers=1, text_encoder_proj_layers=1, **_labels(spec),
    )
    # shi-labs/oneformer_ade20k_swin_tiny: key layout of the sibling cityscapes repo's file (seen) with the
    # ADE values inferred in the notes. The conversion script wrote mean/std as float32 tensors / 255.
    mean = (torch.tensor([123.675, 116.280, 103.530]) / 255).tolist()
    std = (torch.tensor([58.395, 57.120, 57.375]) / 255).tolist()
    processor = {
        "_max_size": 2048, "class_info_file": "ade20k_panoptic.json", "do_normalize": True,
        "do_reduce_labels": False, "do_rescale": True, "do_resize": True, "ignore_index": 255,
        "image_mean": mean, "image_processor_type": "OneFormerImageProcessor", "image_std": std,
        "metadata": _oneformer_metadata(spec), "num_labels": len(spec.label_set), "num_text": 134,
        "repo_path": "shi-labs/oneformer_demo", "resample": 2, "rescale_factor": 0.00392156862745098,
        "size": {"longest_edge": 2048, "shortest_edge": 512},
    }
    return config, processor


def _mask2former(spec):
    config = transformers.Mask2FormerConfig(
        backbone_config=_tiny_swin(), num_queries=16, hidden_dim=32, mask_feature_size=32, feature_size=32,
        encoder_feedforward_dim=64, encoder_layers=1, decoder_layers=2, dim_feedforward=64,
        num_attention_heads=2, **_labels(spec),
    )
    # facebook/mask2former-swin-tiny-ade-semantic at 31d43a0: seen verbatim (538 B). The Cityscapes repo's
    # file at e59f265 (536 B) is inferred: main's file (seen, 537 B, num_labels 19) with the type
    # MaskFormerImageProcessor that a later commit changed, one character shorter.
    processor_type = "Mask2FormerImageProcessor" if len(spec.label_set) == 150 else "MaskFormerImageProcessor"
    processor = {
        "_max_size": 2048, "do_normalize": True, "do_rescale": True, "do_resize": True, "ignore_index": 255,
        "image_mean": [0.48500001430511475, 0.4560000002384186, 0.4059999883174896],
        "image_processor_type": processor_type,
        "image_std": [0.2290000021457672, 0.2239999920129776, 0.22499999403953552],
        "num_labels": len(spec.label_set), "reduce_labels": False, "resample": 2,
        "rescale_factor": 0.00392156862745098, "size": {"height": 384, "width": 384}, "size_divisor": 32,
    }
    return config, processor


def _eomt(spec):
    config = transformers.EomtConfig(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=512, patch_size=16,
        num_queries=16, num_blocks=2, num_register_tokens=4, **_labels(spec),
    )
    # tue-mps/ade20k_semantic_eomt_large_512: inferred from the EoMT documentation (semantic checkpoints
    # split the photo into windows of the shorter side, 512; ImageNet mean and std; no padding).
    processor = {
        "do_normalize": True, "do_pad": False, "do_rescale": True, "do_resize": True, "do_split_image": True,
        "ignore_index": None, "image_mean": IMAGENET_MEAN, "image_processor_type": "EomtImageProcessor",
        "image_std": IMAGENET_STD, "resample": 2, "rescale_factor": 0.00392156862745098,
        "size": {"shortest_edge": 512},
    }
    return config, processor


SMALL_MODELS = {
    "SegformerForSemanticSegmentation": _segformer,
    "MobileNetV2ForSemanticSegmentation": _mobilenet_v2,
    "MobileViTForSemanticSegmentation": _mobilevit,
    "OneFormerForUniversalSegmentation": _oneformer,
    "Mask2FormerForUniversalSegmentation": _mask2former,
    "EomtForUniversalSegmentation": _eomt,
}


# --- OneFormer's class-info file and CLIP tokenizer -----------------------------------------------------


def _class_info(spec) -> dict:
    """ade20k_panoptic.json's layout: {"<id>": {"isthing": 0|1, "name": ...}} (what load_metadata reads).

    The fake marks no class as a thing: only instance and panoptic post-processing read that flag.
    """
    return {str(i): {"isthing": 0, "name": name} for i, name in enumerate(spec.label_set.names)}


def _oneformer_metadata(spec) -> dict:
    from transformers.models.oneformer.image_processing_oneformer import (
        prepare_metadata,
    )

    return prepare_metadata(_class_info(spec))


_CLIP_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _clip_vocabulary(texts: list[str]) -> tuple[dict[str, int], list[str]]:
    """A CLIP-layout BPE vocabulary (256 byte symbols, the same with </w>, merges, the two specials)
    with merges learnt from `texts`; any text encodes (byte fallback), these ones in few tokens."""
    learner = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    learner.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
    learner.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=2000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), end_of_word_suffix="</w>", show_progress=False
    )
    learner.train_from_iterator(texts, trainer)
    with tempfile.TemporaryDirectory() as tmp:
        learner.model.save(tmp)
        merges = [line for line in Path(tmp, "merges.txt").read_text().splitlines() if line and not line.startswith("#")]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m.split(" ")) for m in merges] + [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}, merges


def _write_clip_tokenizer(folder: Path, texts: list[str]) -> None:
    vocab, merges = _clip_vocabulary(texts)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")

    def added(content: str) -> dict:
        return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}

    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": added(BOS), "eos_token": added(EOS), "pad_token": EOS, "unk_token": added(EOS)})
    )
    # The repo's tokenizer_config.json (807 B): CLIPTokenizer, OneFormerProcessor, CLIP's special tokens.
    config = {
        "add_prefix_space": False, "bos_token": {**added(BOS), "__type": "AddedToken"}, "do_lower_case": True,
        "eos_token": {**added(EOS), "__type": "AddedToken"}, "errors": "replace", "model_max_length": 77,
        "pad_token": EOS, "processor_class": "OneFormerProcessor", "tokenizer_class": "CLIPTokenizer",
        "unk_token": {**added(EOS), "__type": "AddedToken"},
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2))


def _oneformer_texts(spec) -> list[str]:
    """What OneFormer's processor tokenises: the task prompt and, in training, the per-class texts."""
    tasks = [f"the task is {task}" for task in ("semantic", "instance", "panoptic")]
    prompts = ["a semantic photo", "an instance photo", "an panoptic photo"]
    return tasks + prompts + [f"a photo with a {name}" for name in spec.label_set.names]


# --- making a random model answer with several classes ---------------------------------------------
#
# A random model whose mask is one class everywhere would make the equality with the reference say
# nothing. transformers' own init (std 0.02) and random BatchNorm statistics do exactly that, so the
# fake re-initialises as plain PyTorch does, then measures BatchNorm statistics on real photos, and
# for OneFormer re-centres the prediction heads on the spread between its queries (see below).

EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "examples"
TEST_PHOTO = "people-astronaut.jpg"  # what the reference tests run on: kept out of the calibration
CALIBRATION_PHOTOS = 4


def _calibration_photos() -> list:
    from seggallery.images import load_image

    paths = [path for path in sorted(EXAMPLES.glob("*.jpg")) if path.name != TEST_PHOTO]
    return [load_image(path).pixels for path in paths[:CALIBRATION_PHOTOS]]


def _make_decisive(spec, model, processor) -> None:
    photos = _calibration_photos()
    task = {"task_inputs": [spec.source["task"]] * len(photos)} if "task" in spec.source else {}
    if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        calibrate_batchnorm(model, lambda: model(**processor(images=photos, return_tensors="pt", **task)))
    if isinstance(model, transformers.EomtForUniversalSegmentation):
        # A trained EoMT has annealed its masked attention away (every block's probability 0): inference
        # runs plain attention, as the real checkpoint's buffer says (inferred from the paper's schedule).
        model.attn_mask_probs.zero_()
        linears = [m for m in model.mask_head.modules() if isinstance(m, torch.nn.Linear)]
        heads = (model.layernorm, model.class_predictor, linears[0], linears[-1])
        inputs = processor(images=photos[:1], return_tensors="pt")
        _center_query_heads(model, inputs, *heads, queries_of=lambda normed: normed[0, : model.config.num_queries])
    if isinstance(model, transformers.OneFormerForUniversalSegmentation):
        decoder = model.model.transformer_module.decoder
        heads = (decoder.decoder_norm, decoder.class_embed, decoder.mask_embed.layers[0].layers[0], decoder.mask_embed.layers[-1].layers[0])
        _center_query_heads(model, processor(images=photos[:1], return_tensors="pt", task_inputs=task["task_inputs"][:1]), *heads)
    if isinstance(model, transformers.Mask2FormerForUniversalSegmentation):
        decoder = model.model.transformer_module.decoder
        linears = [m for m in decoder.mask_predictor.mask_embedder.modules() if isinstance(m, torch.nn.Linear)]
        heads = (decoder.layernorm, model.class_predictor, linears[0], linears[-1])
        _center_query_heads(model, processor(images=photos[:1], return_tensors="pt"), *heads)


def _center_query_heads(model, inputs, norm, class_head, mask_first, mask_last, queries_of=None) -> None:
    """Make a random mask-classification model's queries disagree, as a trained one's do.

    OneFormer's object queries all start from the same task token, and a random Mask2Former's differ
    little once its decoder has mixed them, so they come out nearly identical: same class, same mask,
    one class everywhere. The class and mask heads are re-centred on the queries' mean and scaled to
    their spread (measured at `norm`, the heads' input, on a probe photo), and then sharpened, so that
    each query votes for its own class with its own mask. EoMT's queries are its first tokens, and its
    queries' consensus starts out as strong (`queries_of` picks them from the norm's output).
    """
    seen = []
    hook = norm.register_forward_hook(lambda module, args, output: seen.append(output))
    with torch.no_grad():
        model(**inputs)
    hook.remove()
    queries = queries_of(seen[-1]) if queries_of else seen[-1].reshape(-1, seen[-1].shape[-1])  # queries x hidden
    mean, scale = queries.mean(0), 1.0 / (queries - queries.mean(0)).std()
    with torch.no_grad():
        for linear in (class_head, mask_first):
            linear.bias.sub_(scale * linear.weight @ mean)
            linear.weight.mul_(scale)
        for linear in (class_head, mask_last):
            linear.weight.mul_(10.0)
            linear.bias.mul_(10.0)


# --- writing ---------------------------------------------------------------------------------------


def write(spec) -> None:
    source, extra = spec.source, spec.source.get("extra")
    owner = _first_entry_of(source["repo"], source["revision"])  # one checkpoint per repo commit, as on the Hub
    folder = built_once(owner.id, lambda folder: _build(owner, folder))
    put_in_hub_cache(source["repo"], source["revision"], {name: folder / name for name in source["files"]})
    if extra is not None:
        files = {name: folder / EXTRA / name for name in extra["files"]}
        put_in_hub_cache(extra["repo"], extra["revision"], files, repo_type=extra["repo_type"])
        # Its pinned commit is that repo's main, and the image processor, left to itself, downloads
        # the file from main: so the cache's refs/main points there too, as after a real download.
        put_in_hub_cache(extra["repo"], "main", files, repo_type=extra["repo_type"], commit=extra["revision"])


EXTRA = "extra-repo"  # beside the model files: the second repo's files


def _first_entry_of(repo: str, revision: str):
    """The catalog's first entry of a repo commit: entries that read the same checkpoint another way
    (OneFormer told "panoptic" instead of "semantic") get that entry's fake, not a second one that would
    overwrite it in the cache."""
    from seggallery.catalog import catalog

    return next(spec for spec in catalog().values() if (spec.source.get("repo"), spec.source.get("revision")) == (repo, revision))


def _build(spec, folder: Path) -> None:
    source, extra = spec.source, spec.source.get("extra")
    make = SMALL_MODELS.get(source["model_class"])
    if make is None:
        raise NotImplementedError(f"tests/fakes/transformers.py has no tiny {source['model_class']} ({spec.id})")
    config, processor_config = make(spec)
    torch.manual_seed(0)
    model = getattr(transformers, source["model_class"])(config).eval()
    torch_default_init(model)
    (folder / "preprocessor_config.json").write_text(json.dumps(processor_config, indent=2))
    if "vocab.json" in source["files"]:
        _write_clip_tokenizer(folder, _oneformer_texts(spec))
    extra_folder = None
    if extra is not None:
        assert extra["files"] == ["ade20k_panoptic.json"], f"{spec.id}: the fake knows no extra files {extra['files']}"
        extra_folder = folder / EXTRA
        extra_folder.mkdir()
        (extra_folder / "ade20k_panoptic.json").write_text(json.dumps(_class_info(spec)))
    _make_decisive(spec, model, load_processor(spec, folder, extra_folder))
    model.save_pretrained(folder)  # config.json + model.safetensors
    if "pytorch_model.bin" in source["files"]:
        # Repos from before safetensors hold the same tensors as a torch.save'd state dict.
        torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    missing = [name for name in source["files"] if not (folder / name).is_file()]
    assert not missing, f"{spec.id}: the fake does not write {missing}"
