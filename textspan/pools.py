"""Pools of candidate text descriptions for TEXTSPAN, and the two baselines it is compared against.

The built-in pool is generated from the word lists in `textspan._pool_words`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from textspan import _pool_words as words

logger = logging.getLogger(__name__)

# Any change to the word lists in `textspan._pool_words` or to the templates below changes the
# pool, so it must bump this version. Caches keyed on the version then stop matching old results.
GENERAL_POOL_VERSION = "1"

# Prefixes of words that start with a vowel letter but a consonant sound ("a university", "a one-way
# street"). Like the two sets below, they cover the built-in word lists, not all of English.
_CONSONANT_SOUND_PREFIXES = ("uni", "use", "usu", "uti", "ura", "uro", "eu", "one", "once", "ukulele")
# Prefixes of words that start with a silent h ("an hour", "an hourglass").
_SILENT_H_PREFIXES = ("hour", "honest", "honor", "honour", "heir")
# Letters whose English names start with a vowel sound ("an X-ray", "an MRI scan").
_VOWEL_SOUND_LETTERS = frozenset("AEFHILMNORSX")

_IRREGULAR_PLURALS = {
    "person": "people",
    "child": "children",
    "man": "men",
    "woman": "women",
    "mouse": "mice",
    "goose": "geese",
    "sheep": "sheep",
    "deer": "deer",
    "moose": "moose",
    "bison": "bison",
    "fish": "fish",
    "goldfish": "goldfish",
    "jellyfish": "jellyfish",
    "starfish": "starfish",
    "wolf": "wolves",
    "leaf": "leaves",
    "knife": "knives",
    "tooth": "teeth",
    "foot": "feet",
    "octopus": "octopuses",
    "rhinoceros": "rhinoceroses",
    "hippopotamus": "hippopotamuses",
}

# Number of subjects that each art style, photographic style and camera view is paired with.
_SUBJECTS_PER_ART_STYLE = 6
_SUBJECTS_PER_PHOTO_STYLE = 6
_SUBJECTS_PER_CAMERA_VIEW = 7


# ---------------------------------------------------------------------------
# Grammar helpers


def _indefinite_article(phrase: str) -> str:
    """Return "a" or "an" for `phrase`, judged by the sound of its first word."""
    first_word = re.split(r"[\s-]", phrase, maxsplit=1)[0]

    if first_word[0].isdigit():
        digits = re.match(r"\d+", first_word).group()
        # Numbers read as "eight...", "eleven..." or "eighteen..." start with a vowel sound: 8, 80-89,
        # 800-899, 11, 18, 11000 ("an 8-year-old", "an 11-year-old").
        starts_with_vowel_sound = digits.startswith("8") or (len(digits) % 3 == 2 and digits[:2] in ("11", "18"))
        return "an" if starts_with_vowel_sound else "a"

    if first_word.isupper():
        # Initialisms and single capital letters are read letter by letter.
        return "an" if first_word[0] in _VOWEL_SOUND_LETTERS else "a"

    lowered = first_word.lower()
    if lowered.startswith(_CONSONANT_SOUND_PREFIXES):
        return "a"
    if lowered.startswith(_SILENT_H_PREFIXES):
        return "an"
    return "an" if lowered[0] in "aeiou" else "a"


def _with_article(phrase: str) -> str:
    """Prefix `phrase` with "a" or "an"."""
    return f"{_indefinite_article(phrase)} {phrase}"


def _plural(noun: str) -> str:
    """Return the plural of `noun`, inflecting only its last word ("guinea pig" -> "guinea pigs")."""
    head, _, last = noun.rpartition(" ")
    prefix = f"{head} " if head else ""

    if last in _IRREGULAR_PLURALS:
        return prefix + _IRREGULAR_PLURALS[last]
    if last.endswith(("s", "x", "z", "ch", "sh")):
        return f"{prefix}{last}es"
    if last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u"):
        return f"{prefix}{last[:-1]}ies"
    return f"{prefix}{last}s"


def _sentence(text: str) -> str:
    """Capitalize the first character of `text` and leave the rest unchanged."""
    return text[:1].upper() + text[1:]


def _rotated_subjects(subjects: Sequence[str], index: int, count: int) -> list[str]:
    """Pick `count` consecutive subjects, wrapping around, for the item at position `index`.

    Item `index` starts where item `index - 1` stopped, so the subjects are used about equally
    often across items (styles, colours or shapes). `count` must not exceed `len(subjects)`.
    """
    start = (index * count) % len(subjects)
    return [subjects[(start + offset) % len(subjects)] for offset in range(count)]


# ---------------------------------------------------------------------------
# Category generators. Each returns the descriptions of one category, in a fixed order.


def _colors() -> list[str]:
    texts = [f"A photo dominated by the color {color}" for color in words.COLORS]
    texts += [_sentence(f"{_with_article('solid ' + color)} background") for color in words.COLORS]
    for index, color in enumerate(words.COLORS):
        for thing in _rotated_subjects(words.COLORED_OBJECTS, index, 3):
            texts.append(_sentence(_with_article(f"{color} {thing}")))
    texts += [f"An image with {_with_article(palette)} palette" for palette in words.PALETTES]
    texts += [f"A photo with {_with_article(palette)} color scheme" for palette in words.PALETTES]
    return texts


def _shapes() -> list[str]:
    texts = [f"A drawing of {_with_article(shape)}" for shape in words.SHAPES]
    for index, shape in enumerate(words.SHAPES):
        for color in _rotated_subjects(words.SHAPE_COLORS, index, 3):
            texts.append(_sentence(f"{_with_article(color + ' ' + shape)} on a white background"))
    texts += [f"A pattern of repeating {_plural(shape)}" for shape in words.SHAPES]
    texts += [f"An object shaped like {_with_article(shape)}" for shape in words.SHAPES]
    texts += [f"A neon outline of {_with_article(shape)}" for shape in words.SHAPES]
    return texts


def _textures_and_patterns() -> list[str]:
    texts = [f"A close-up of {_with_article(texture)} surface" for texture in words.TEXTURES]
    texts += [_sentence(f"{_with_article(texture)} texture") for texture in words.TEXTURES]
    texts += [f"A fabric with {_with_article(pattern)} pattern" for pattern in words.PATTERNS]
    texts += [f"A wall covered in {_with_article(pattern)} pattern" for pattern in words.PATTERNS]
    for index, pattern in enumerate(words.PATTERNS):
        colors = words.PATTERN_COLORS[index % len(words.PATTERN_COLORS)]
        texts.append(_sentence(f"{_with_article(pattern)} pattern in {colors}"))
    return texts


def _materials() -> list[str]:
    texts = [f"A close-up photo of {material}" for material in words.MATERIALS]
    texts += [f"An object made of {material}" for material in words.MATERIALS]
    texts += [f"The texture of {material}" for material in words.MATERIALS]
    return texts


def _countries() -> list[str]:
    texts = [f"A photo taken in {country}" for country in words.COUNTRIES]
    texts += [f"A landscape in {country}" for country in words.COUNTRIES]
    texts += [f"The flag of {country}" for country in words.COUNTRIES]
    return texts


def _cities() -> list[str]:
    texts = [f"A photo taken in {city}, {region}" for city, region in words.CITIES]
    texts += [f"A street scene in {city}" for city, _ in words.CITIES]
    return texts


def _landscapes() -> list[str]:
    texts = [f"A landscape photo of {_with_article(landscape)}" for landscape in words.LANDSCAPES]
    texts += [f"A misty morning over {_with_article(landscape)}" for landscape in words.LANDSCAPES]
    return texts


def _indoor_places() -> list[str]:
    texts = [f"A photo taken inside {_with_article(place)}" for place in words.INDOOR_PLACES]
    texts += [f"The interior of {_with_article(place)}" for place in words.INDOOR_PLACES]
    texts += [_sentence(_with_article(f"empty {place}")) for place in words.INDOOR_PLACES]
    return texts


def _outdoor_places() -> list[str]:
    texts = [f"A photo taken at {_with_article(place)}" for place in words.OUTDOOR_PLACES]
    texts += [_sentence(_with_article(f"deserted {place}")) for place in words.OUTDOOR_PLACES]
    texts += [_sentence(_with_article(f"busy {place}")) for place in words.OUTDOOR_PLACES]
    return texts


def _counts() -> list[str]:
    texts = []
    for number in words.NUMBER_WORDS:
        for subject in words.COUNTED_SUBJECTS:
            noun = subject if number == "one" else _plural(subject)
            texts.append(f"A photo of {number} {noun}")
    texts += [f"A photo of dozens of {_plural(subject)}" for subject in words.COUNTED_SUBJECTS]
    texts += list(words.CROWDS)
    return texts


def _letters() -> list[str]:
    texts = []
    for template in words.LETTER_TEMPLATES:
        for code in range(ord("A"), ord("Z") + 1):
            texts.append(template.format(upper=chr(code), lower=chr(code).lower()))
    return texts


def _numbers() -> list[str]:
    numbers = [*range(31), *range(40, 101, 10), 1000]
    texts = [f"A photo with the number {number}" for number in numbers]
    for template in words.DIGIT_TEMPLATES:
        texts += [template.format(digit=digit) for digit in range(10)]
    return texts


def _animals() -> list[str]:
    texts = [f"A photo of {_with_article(animal)}" for animal in words.ANIMALS]
    texts += [f"A close-up photo of {_with_article(animal)}" for animal in words.ANIMALS]
    texts += [f"A photo of a group of {_plural(animal)}" for animal in words.ANIMALS]
    return texts


def _objects() -> list[str]:
    texts = [f"A photo of {_with_article(thing)}" for thing in words.OBJECTS]
    texts += [_sentence(f"{_with_article(thing)} on a plain white background") for thing in words.OBJECTS]
    texts += [_sentence(f"{_with_article(thing)} on a wooden table") for thing in words.TABLETOP_OBJECTS]
    return texts


def _people_by_age() -> list[str]:
    texts = [f"A portrait of {_with_article(person)}" for person in words.PEOPLE_BY_AGE]
    texts += [f"A candid photo of {_with_article(person)}" for person in words.PEOPLE_BY_AGE]
    texts += [f"A photo of {_with_article(person)} in a park" for person in words.PEOPLE_BY_AGE]
    for age, nouns in words.AGES:
        for noun in nouns:
            texts.append(f"A photo of {_with_article(f'{age}-year-old {noun}')}")
    return texts


def _people_by_activity() -> list[str]:
    texts = [f"A photo of a person {activity}" for activity in words.ACTIVITIES]
    # Alternate the subject so that each activity appears once with a man or a woman.
    for index, activity in enumerate(words.ACTIVITIES):
        subject = "A man" if index % 2 == 0 else "A woman"
        texts.append(f"{subject} {activity}")
    texts += list(words.GROUP_ACTIVITIES)
    return texts


def _facial_expressions() -> list[str]:
    adjectives = words.EXPRESSION_ADJECTIVES
    texts = [f"A close-up of {_with_article(adjective)} face" for adjective in adjectives]
    texts += [f"A portrait of {_with_article(adjective)} person" for adjective in adjectives]
    texts += [f"A child looking {adjective}" for adjective in adjectives]
    texts += [f"A close-up of a person {verb}" for verb in words.EXPRESSION_VERBS]
    texts += [f"A portrait of a woman {verb}" for verb in words.EXPRESSION_VERBS]
    texts += [f"A portrait of a man {verb}" for verb in words.EXPRESSION_VERBS]
    return texts


def _seasons() -> list[str]:
    texts = [f"A photo taken in {season}" for season in words.SEASONS]
    for season in words.SEASONS:
        texts += [_sentence(f"{_with_article(place)} in {season}") for place in words.SEASON_PLACES]
    texts += list(words.SEASON_SCENES)
    return texts


def _weather() -> list[str]:
    texts = []
    for adjective in words.WEATHER_ADJECTIVES:
        for place in words.WEATHER_PLACES:
            texts.append(_sentence(f"{_with_article(place)} on {_with_article(adjective)} day"))
    texts += list(words.WEATHER_SCENES)
    return texts


def _times_of_day() -> list[str]:
    texts = []
    for time in words.TIMES_OF_DAY:
        texts += [_sentence(f"{_with_article(place)} {time}") for place in words.TIME_PLACES]
    return texts


def _styled(styles: Sequence[str], subjects: Sequence[str], per_style: int) -> list[str]:
    """Pair each style with `per_style` rotated subjects as "A <style> of <subject>"."""
    texts = []
    for index, style in enumerate(styles):
        for subject in _rotated_subjects(subjects, index, per_style):
            texts.append(_sentence(f"{_with_article(style)} of {subject}"))
    return texts


def _art_styles() -> list[str]:
    return _styled(words.ART_STYLES, words.ART_SUBJECTS, _SUBJECTS_PER_ART_STYLE)


def _photo_styles() -> list[str]:
    return _styled(words.PHOTO_STYLES, words.PHOTO_SUBJECTS, _SUBJECTS_PER_PHOTO_STYLE)


def _camera_views() -> list[str]:
    return _styled(words.CAMERA_VIEWS, words.CAMERA_SUBJECTS, _SUBJECTS_PER_CAMERA_VIEW)


def _scenes() -> list[str]:
    return list(words.SCENES)


# Category name -> generator, in the order the categories appear in `general_pool()`.
_CATEGORY_GENERATORS: dict[str, Callable[[], list[str]]] = {
    "colors": _colors,
    "shapes": _shapes,
    "textures_and_patterns": _textures_and_patterns,
    "materials": _materials,
    "countries": _countries,
    "cities": _cities,
    "landscapes": _landscapes,
    "scenes": _scenes,
    "indoor_places": _indoor_places,
    "outdoor_places": _outdoor_places,
    "counts": _counts,
    "letters": _letters,
    "numbers": _numbers,
    "animals": _animals,
    "objects": _objects,
    "people_by_age": _people_by_age,
    "people_by_activity": _people_by_activity,
    "facial_expressions": _facial_expressions,
    "seasons": _seasons,
    "weather": _weather,
    "times_of_day": _times_of_day,
    "art_styles": _art_styles,
    "photo_styles": _photo_styles,
    "camera_views": _camera_views,
}


@functools.cache
def _build_categories() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Generate every category once and check that no description repeats, ignoring case."""
    categories = tuple((name, tuple(generate())) for name, generate in _CATEGORY_GENERATORS.items())

    first_category: dict[str, str] = {}
    for name, texts in categories:
        for text in texts:
            key = text.casefold()
            if key in first_category:
                raise RuntimeError(
                    f"The built-in pool contains {text!r} twice (categories {first_category[key]!r} and {name!r}). "
                    "Change a word list or template in textspan so that each description is unique."
                )
            first_category[key] = name
    return categories


# ---------------------------------------------------------------------------
# Public API


def general_pool_categories() -> dict[str, list[str]]:
    """Build the built-in description pool grouped by category.

    Returns:
        A new dict from category name (such as "colors", "animals" or "camera_views") to that
        category's descriptions. Concatenating the values in dict order gives `general_pool()`.
        Descriptions are unique across all categories, ignoring case.
    """
    return {name: list(texts) for name, texts in _build_categories()}


def general_pool() -> list[str]:
    """Build the built-in pool of short image descriptions (3,977 in version "1").

    The pool is generated deterministically from fixed word lists and covers colours, shapes,
    textures, materials, places, counts, letters, numbers, animals, objects, people, facial
    expressions, seasons, weather, times of day, art and photographic styles and camera views.
    Its content is identified by `GENERAL_POOL_VERSION`.

    Returns:
        A new list of unique descriptions (unique ignoring case), in category order.
    """
    return [text for _, texts in _build_categories() for text in texts]


def validate_pool(texts: Sequence[str]) -> list[str]:
    """Check that `texts` is a non-empty sequence of non-blank strings and return it as a list.

    Duplicates are allowed and kept.

    Raises:
        TypeError: `texts` is a single string or not a sequence, or an entry is not a string.
        ValueError: `texts` is empty, or an entry is empty or contains only whitespace.
    """
    if isinstance(texts, (str, bytes)):
        raise TypeError(
            f"texts must be a sequence of strings, got a single {type(texts).__name__} ({texts[:60]!r}). "
            "Wrap one description in a list: [text]."
        )
    if not isinstance(texts, Sequence):
        raise TypeError(
            f"texts must be a sequence of strings such as a list, got {type(texts).__name__}. "
            "Convert it with list(texts)."
        )
    if len(texts) == 0:
        raise ValueError(
            "texts is empty, but a description pool needs at least one description. "
            "Use general_pool() for the built-in pool or load_pool(path) for a file."
        )

    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"texts[{index}] is {type(text).__name__} {text!r}, expected str. "
                "Convert every description to a string before building the pool."
            )
        if not text.strip():
            raise ValueError(
                f"texts[{index}] is {'an empty string' if not text else 'whitespace only'} ({text!r}), "
                "expected a non-blank description. Remove blank entries from the pool."
            )
    return list(texts)


def load_pool(path: str | os.PathLike[str]) -> list[str]:
    """Read a description pool from a UTF-8 text file with one description per line.

    Each line is stripped of surrounding whitespace. Blank lines and repeated descriptions are
    dropped, keeping the first occurrence, and the number of each dropped is logged at INFO level.
    A leading byte order mark is ignored.

    Returns:
        The descriptions in file order.

    Raises:
        TypeError: `path` is not a string or path.
        FileNotFoundError: `path` does not exist.
        IsADirectoryError: `path` is a directory.
        ValueError: the file is not valid UTF-8 or contains no descriptions.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__} {path!r}.")
    file_path = Path(path)

    if not file_path.exists():
        raise FileNotFoundError(
            f"Description pool file not found: {str(file_path)!r}. Check the path, or create a UTF-8 text "
            "file with one description per line. Use general_pool() for the built-in pool."
        )
    if file_path.is_dir():
        raise IsADirectoryError(
            f"Description pool path {str(file_path)!r} is a directory, not a file. Pass the path of a "
            "UTF-8 text file with one description per line."
        )

    try:
        content = file_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"Description pool file {str(file_path)!r} is not valid UTF-8 ({error}). Re-save it with UTF-8 encoding."
        ) from error

    texts: list[str] = []
    seen: set[str] = set()
    blank_count = 0
    duplicate_count = 0
    for line in content.splitlines():
        text = line.strip()
        if not text:
            blank_count += 1
        elif text in seen:
            duplicate_count += 1
        else:
            seen.add(text)
            texts.append(text)

    if not texts:
        raise ValueError(
            f"Description pool file {str(file_path)!r} contains no descriptions "
            f"({blank_count} blank lines). Add one description per line."
        )

    logger.info(
        "Loaded %d descriptions from %s and dropped %d blank lines and %d duplicate lines.",
        len(texts),
        file_path,
        blank_count,
        duplicate_count,
    )
    return texts


def _check_positive_int(name: str, value: object) -> None:
    """Raise TypeError or ValueError unless `value` is an int greater than zero."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}. Pass a positive whole number.")
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}. Pass an int of at least 1.")


def common_words_pool(n: int) -> list[str]:
    """Return the `n` most common English words, most frequent first, as a baseline pool.

    The words come from `wordfreq.top_n_list("en", n)`, which merges several corpora of
    written and spoken English. The list is shorter than `n` when wordfreq's English list
    contains fewer than `n` words, and a warning is logged in that case.

    Raises:
        TypeError: `n` is not an int.
        ValueError: `n` is not positive.
        ImportError: the optional `wordfreq` package is not installed.
    """
    _check_positive_int("n", n)
    try:
        import wordfreq
    except ImportError as error:
        raise ImportError(
            "common_words_pool needs the wordfreq package, which is not installed. "
            "Install it with: pip install wordfreq"
        ) from error

    texts = wordfreq.top_n_list("en", n)
    if len(texts) < n:
        logger.warning("wordfreq lists only %d English words, fewer than the %d requested.", len(texts), n)
    return validate_pool(texts)


# Seed range accepted by torch.Generator.manual_seed (signed or unsigned 64-bit).
_MIN_SEED = -(2**63)
_MAX_SEED = 2**64 - 1


def random_unit_vectors(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Draw `n` random unit vectors of size `dim` as a baseline for text directions.

    The vectors are Gaussian samples from a CPU `torch.Generator` seeded with `seed`, scaled to
    unit L2 norm, so their directions are uniform on the sphere. The same arguments give the
    same tensor on every run with the same PyTorch version.

    Returns:
        A float32 CPU tensor of shape `[n, dim]` whose rows have L2 norm 1.

    Raises:
        TypeError: `n`, `dim` or `seed` is not an int.
        ValueError: `n` or `dim` is not positive, or `seed` is outside the 64-bit range.
    """
    _check_positive_int("n", n)
    _check_positive_int("dim", dim)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}. Pass a whole number such as 0.")
    if not _MIN_SEED <= seed <= _MAX_SEED:
        raise ValueError(
            f"seed {seed} is outside the range that torch.Generator.manual_seed accepts "
            f"[{_MIN_SEED}, {_MAX_SEED}]. Pass a smaller seed."
        )

    generator = torch.Generator(device="cpu").manual_seed(seed)
    vectors = torch.randn(n, dim, generator=generator, dtype=torch.float32)
    return vectors / vectors.norm(dim=1, keepdim=True)


def pool_hash(texts: Sequence[str]) -> str:
    """Compute a SHA-256 hex digest of the pool's texts, in order, for use as a cache key.

    Each text is hashed as its UTF-8 length in 8 big-endian bytes followed by its UTF-8 bytes,
    so ["ab", "c"] and ["a", "bc"] hash differently. Reordering the texts changes the digest.

    Raises:
        TypeError, ValueError: `texts` fails `validate_pool`.
    """
    digest = hashlib.sha256()
    for text in validate_pool(texts):
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return digest.hexdigest()
