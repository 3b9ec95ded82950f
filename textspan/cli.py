"""The `textspan` command line."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch
from torch.utils.data import Subset

from hooked_clip import PretrainedWeightsUnavailableError
from hooked_clip.hooked_clip import CLASSNAMES, TEMPLATES, HookedCLIP
from textspan._io import atomic_write_text
from textspan.decomposition import decompose, direct_effect_shares
from textspan.heatmaps import save_overlay, token_heatmaps
from textspan.images import denormalize, list_images, load_images, shipped_photos_dir
from textspan.pools import general_pool, load_pool
from textspan.segment_eval import METHODS, evaluate_segmentation, format_table
from textspan.segmentation import load_image_mask_folder, load_imagenet_segmentation
from textspan.store import decompose_folder
from textspan.text_embeddings import embed_texts
from textspan.text_span import text_span_heads

logger = logging.getLogger("textspan")

RANDOM_WEIGHTS_NOTE = (
    "These results come from random weights: they show the structure of the analysis only, "
    "not what a trained CLIP model encodes."
)


def add_model_arguments(parser: argparse.ArgumentParser, pretrained_default: str | None = None) -> None:
    """Add --model, --pretrained, --device and --seed, shared by every command."""
    parser.add_argument("--model", default="ViT-B-16", help="OpenCLIP model name (default: %(default)s)")
    pretrained_help = "OpenCLIP pretrained tag, a checkpoint file path, or 'random' for random weights"
    if pretrained_default is None:
        parser.add_argument("--pretrained", required=True, help=pretrained_help)
    else:
        parser.add_argument("--pretrained", default=pretrained_default, help=pretrained_help + " (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default: %(default)s)")


def load_model(args: argparse.Namespace) -> HookedCLIP:
    """Build the model named by --model, --pretrained, --device and --seed, with a printed note for random weights."""
    if args.pretrained != "random":
        return HookedCLIP.from_open_clip(args.model, args.pretrained, device=args.device)
    torch.manual_seed(args.seed)
    print(f"NOTE: {RANDOM_WEIGHTS_NOTE}\n")
    return HookedCLIP.from_open_clip(args.model, None, device=args.device)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textspan",
        description="Decompose CLIP image embeddings into heads and image tokens, and label heads with text.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)

    demo = subcommands.add_parser(
        "demo",
        help="decompose photos, label the last layers' heads with TEXTSPAN, and write heatmaps",
        description="Run the decomposition, TEXTSPAN and text heatmaps on a folder of photos "
        "(by default the photos that ship with textspan).",
    )
    add_model_arguments(demo, pretrained_default="laion2b_s34b_b88k")
    demo.add_argument("--images", type=Path, default=None, help="folder of images (default: the shipped photos)")
    demo.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default: %(default)s)")
    demo.add_argument("--pool", type=Path, default=None, help="text file of candidate descriptions, one per line "
                      "(default: the built-in general pool)")
    demo.add_argument("--layers", type=int, default=4, help="number of last layers whose heads TEXTSPAN labels "
                      "(default: %(default)s)")
    demo.add_argument("--texts-per-head", type=int, default=5, help="TEXTSPAN texts per head (default: %(default)s)")
    demo.add_argument("--description", default=None, help="text of the heatmaps (default: for each photo, the "
                      "pool description closest to its embedding)")
    demo.set_defaults(run=run_demo)

    job = subcommands.add_parser(
        "decompose",
        help="decompose a folder of images into chunk files (resumable)",
        description="Decompose every image of a folder into direct effects and write them to --out in "
        "chunks. Rerunning the same command after an interruption continues where it stopped.",
    )
    add_model_arguments(job)
    job.add_argument("--images", type=Path, required=True, help="folder of images (searched recursively)")
    job.add_argument("--out", type=Path, required=True, help="output folder for manifest.json and chunk files")
    job.add_argument("--layers", type=int, nargs="+", default=[-4, -3, -2, -1],
                     help="layers whose per-head terms are stored; negative counts from the end (default: last 4)")
    job.add_argument("--batch-size", type=int, default=32, help="images per forward pass (default: %(default)s)")
    job.add_argument("--chunk-size", type=int, default=512, help="images per chunk file (default: %(default)s)")
    job.add_argument("--mean-and-bias", choices=["per_term", "shared"], default="per_term",
                     help="LayerNorm mean and bias convention (default: %(default)s)")
    job.set_defaults(run=run_decompose)

    segment = subcommands.add_parser(
        "segment-eval",
        help="evaluate zero-shot segmentation of the text heatmaps and the baselines",
        description="Score text heatmaps and baseline methods on images with foreground masks, and print "
        "pixel accuracy, mIoU and mAP per method. Rerunning with the same arguments resumes.",
    )
    add_model_arguments(segment)
    source = segment.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="gtsegs_ijcv.mat of ImageNet-segmentation (HDF5)")
    source.add_argument("--images", type=Path, help="folder of images, paired by file stem with --masks")
    segment.add_argument("--masks", type=Path, help="folder of PNG masks (0/1 or 0/255), with --images")
    segment.add_argument("--out", type=Path, required=True, help="output folder for per-batch scores and results.json")
    segment.add_argument("--methods", default=",".join(METHODS),
                         help="comma-separated methods (default: %(default)s)")
    segment.add_argument("--classnames", default="imagenet",
                         help="'imagenet' or a text file with one class name per line (default: %(default)s)")
    segment.add_argument("--templates", default="An image of a {}.",
                         help="'openai_imagenet', 'simple_imagenet', or one template with {} (default: %(default)r)")
    segment.add_argument("--batch-size", type=int, default=8, help="images per batch (default: %(default)s)")
    segment.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    segment.add_argument("--clip-negative", action="store_true",
                         help="set negative heatmap values to 0 before min-max normalisation")
    segment.set_defaults(run=run_segment_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("textspan", "hooked_clip"):
        logging.getLogger(name).setLevel(logging.INFO)
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except PretrainedWeightsUnavailableError as error:
        print(
            f"textspan: {error} Download them on a machine with internet access and pass --pretrained PATH "
            "(the OpenCLIP checkpoint file), or pass --pretrained random (random weights, which show the "
            "structure of the results only).",
            file=sys.stderr,
        )
        return 2
    except (FileNotFoundError, ValueError, KeyError, NotImplementedError) as error:
        print(f"textspan: error: {error}", file=sys.stderr)
        return 2


def run_demo(args: argparse.Namespace) -> int:
    random_weights = args.pretrained == "random"
    model = load_model(args)
    if args.layers <= 0 or args.layers > model.visual.cfg.n_layers:
        raise ValueError(f"--layers {args.layers} is invalid; {args.model} has {model.visual.cfg.n_layers} layers.")

    paths = list_images(args.images or shipped_photos_dir())
    if len(paths) < 2:
        raise ValueError(
            f"The demo found {len(paths)} image in {args.images}; TEXTSPAN needs the variance over at least "
            "2 images. Add images to the folder."
        )
    images, _ = load_images(paths, model.preprocess)
    pool = load_pool(args.pool) if args.pool else general_pool()
    args.out.mkdir(parents=True, exist_ok=True)

    cfg = model.visual.cfg
    decomposition = decompose(model.visual, images.to(args.device), token_layers=range(cfg.n_layers))
    shares = direct_effect_shares(decomposition)
    print(format_layer_table(shares))

    text_embeddings = embed_texts(model, pool, progress=True)
    last_layers = list(range(cfg.n_layers - args.layers, cfg.n_layers))
    n_texts = min(args.texts_per_head, len(paths) - 1)
    if n_texts < args.texts_per_head:
        logger.warning(
            "%d images span at most %d directions per head, so TEXTSPAN picks %d texts per head instead of %d.",
            len(paths), len(paths) - 1, n_texts, args.texts_per_head,
        )
    spans = text_span_heads(
        decomposition.heads[:, last_layers], text_embeddings, n_texts, last_layers, texts=pool
    )
    print(format_text_spans(spans))

    heatmap_files = write_heatmaps(model, decomposition, images, paths, pool, text_embeddings, args)
    report = {
        "model": args.model,
        "pretrained": args.pretrained,
        "random_weights": random_weights,
        "note": RANDOM_WEIGHTS_NOTE if random_weights else None,
        "images": [str(path) for path in paths],
        "pool_size": len(pool),
        "direct_effect_shares": {key: value.tolist() for key, value in shares.items()},
        "text_spans": [result.to_dict() | {"basis": None} for result in spans],
        "heatmaps": heatmap_files,
    }
    write_json(args.out / "report.json", report)
    print(f"\nWrote {len(heatmap_files)} heatmaps and report.json to {args.out}")
    return 0


def run_decompose(args: argparse.Namespace) -> int:
    model = load_model(args)
    paths = list_images(args.images, recursive=True)
    decompose_folder(
        model.visual, paths, model.preprocess, args.out, layers=args.layers, batch_size=args.batch_size,
        chunk_size=args.chunk_size, mean_and_bias=args.mean_and_bias, device=args.device,
    )
    print(f"Decomposed {len(paths)} images into {args.out}")
    return 0


def run_segment_eval(args: argparse.Namespace) -> int:
    methods = [method.strip().replace("-", "_") for method in args.methods.split(",") if method.strip()]
    if args.images is not None and args.masks is None:
        raise ValueError("--images needs --masks, the folder of PNG masks paired by file stem.")
    dataset = load_imagenet_segmentation(args.data) if args.data else load_image_mask_folder(args.images, args.masks)
    if args.limit is not None:
        if args.limit <= 0:
            raise ValueError(f"--limit {args.limit} is invalid; expected a positive number of images.")
        dataset = Subset(dataset, range(min(args.limit, len(dataset))))

    model = load_model(args)
    classnames = args.classnames if args.classnames in CLASSNAMES else load_pool(Path(args.classnames))
    templates = args.templates if args.templates in TEMPLATES else [args.templates]
    classifier = model.zero_shot_classifier(classnames, templates, progress=True)

    results = evaluate_segmentation(
        model, dataset, classifier, args.out, methods=methods, batch_size=args.batch_size,
        clip_negative=args.clip_negative,
    )
    print(format_table(results))
    print(f"\nWrote per-batch scores and results.json to {args.out}")
    return 0


def format_layer_table(shares: dict[str, torch.Tensor]) -> str:
    """Render the per-layer direct effects (share of the embedding, mean over images) as text."""
    lines = ["Direct effect on the image embedding: <term, e> / |e|^2, mean over images", "",
             f"{'layer':>5}  {'attention':>10}  {'mlp':>10}"]
    for layer, (attention, mlp) in enumerate(zip(shares["attention"].tolist(), shares["mlp"].tolist(), strict=True)):
        lines.append(f"{layer:>5}  {attention:>10.4f}  {mlp:>10.4f}")
    lines.append(
        f"embed (class token after ln_pre) {float(shares['embed']):.4f}, ln_post bias {float(shares['ln_bias']):.4f}"
    )
    return "\n".join(lines) + "\n"


def format_text_spans(spans) -> str:
    """Render TEXTSPAN results as one block per head."""
    lines = []
    for result in spans:
        explained = result.explained[-1] if result.explained else 0.0
        lines.append(f"L{result.layer}.H{result.head} (variance explained {explained:.2f})")
        lines.extend(f"    {text}" for text in result.texts or [])
    return "\n".join(lines)


def write_heatmaps(model, decomposition, images, paths, pool, text_embeddings, args) -> list[dict]:
    """Write one heatmap PNG per image and return their descriptions."""
    cfg = model.visual.cfg
    if args.description:
        descriptions = [args.description] * len(paths)
        directions = model.encode_text([args.description], normalize=True).expand(len(paths), -1)
    else:
        nearest = (decomposition.total() @ text_embeddings.T).argmax(dim=1)
        descriptions = [pool[i] for i in nearest.tolist()]
        directions = text_embeddings[nearest]

    maps = token_heatmaps(decomposition, directions, cfg.grid_size)
    preprocess_cfg = model.preprocess_cfg
    written = []
    for index, (path, description) in enumerate(zip(paths, descriptions, strict=True)):
        target = args.out / f"{path.stem}_heatmap.png"
        picture = denormalize(images[index], preprocess_cfg.mean, preprocess_cfg.std)
        save_overlay(picture, maps[index, index], target, f"{path.name}: \"{description}\" (all layers, all heads)")
        written.append({"image": path.name, "description": description, "file": target.name})
    return written


def write_json(path: Path, data: dict) -> None:
    """Write `data` as JSON through a temporary file, so that a failure leaves no partial file."""
    atomic_write_text(path, json.dumps(data, indent=2))


if __name__ == "__main__":
    sys.exit(main())
