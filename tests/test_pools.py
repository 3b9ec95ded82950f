"""Tests for textspan.pools: the built-in pool, file loading, baselines and hashing."""

from __future__ import annotations

import logging
import re
import sys
from collections import Counter

import pytest
import torch

from textspan import pools
from textspan.pools import (
    GENERAL_POOL_VERSION,
    common_words_pool,
    general_pool,
    general_pool_categories,
    load_pool,
    pool_hash,
    random_unit_vectors,
    validate_pool,
)

EXPECTED_CATEGORIES = (
    "colors",
    "shapes",
    "textures_and_patterns",
    "materials",
    "countries",
    "cities",
    "landscapes",
    "scenes",
    "indoor_places",
    "outdoor_places",
    "counts",
    "letters",
    "numbers",
    "animals",
    "objects",
    "people_by_age",
    "people_by_activity",
    "facial_expressions",
    "seasons",
    "weather",
    "times_of_day",
    "art_styles",
    "photo_styles",
    "camera_views",
)

# Maximum share of the pool that one category may take.
BALANCE_CAP = 0.20

# SHA-256 of the built-in pool for each GENERAL_POOL_VERSION. A change to the word lists or
# templates must bump the version and add its digest here, so that caches keyed on the
# version never mix two different pools.
POOL_DIGESTS = {
    "1": "364cc8496439537f7739e8a0a394249b6e7f4729fc2a16f2dc1a482a23c6c999",
}

# Words that take "a" although they start with a vowel letter, because they start with a consonant sound.
CONSONANT_SOUND_EXCEPTIONS = ("uni", "use", "usu", "eu", "one")
# Words that take "an" although they start with a consonant letter.
VOWEL_SOUND_EXCEPTIONS = ("hour", "honest", "x-ray")


@pytest.fixture(scope="module")
def pool() -> list[str]:
    return general_pool()


@pytest.fixture(scope="module")
def categories() -> dict[str, list[str]]:
    return general_pool_categories()


# ---------------------------------------------------------------------------
# Built-in pool


def test_general_pool_size(pool):
    assert len(pool) >= 3000
    assert len(pool) <= 4000


def test_general_pool_no_duplicates(pool):
    counts = Counter(text.casefold() for text in pool)
    repeated = sorted(text for text, count in counts.items() if count > 1)
    assert repeated == []


def test_general_pool_all_strings(pool):
    assert all(isinstance(text, str) for text in pool)


def test_general_pool_deterministic():
    assert general_pool() == general_pool()


def test_general_pool_returns_copy():
    first = general_pool()
    first.clear()
    assert len(general_pool()) >= 3000


def test_general_pool_matches_version(pool):
    assert GENERAL_POOL_VERSION in POOL_DIGESTS, f"add the digest of pool version {GENERAL_POOL_VERSION!r}"
    assert pool_hash(pool) == POOL_DIGESTS[GENERAL_POOL_VERSION], (
        "the built-in pool changed; bump GENERAL_POOL_VERSION and add the new digest to POOL_DIGESTS"
    )


def test_version_is_nonempty_string():
    assert isinstance(GENERAL_POOL_VERSION, str)
    assert GENERAL_POOL_VERSION.strip() != ""


def test_categories_concatenate_to_pool(pool, categories):
    concatenated = [text for texts in categories.values() for text in texts]
    assert concatenated == pool


def test_categories_return_copies():
    first = general_pool_categories()
    first["colors"].clear()
    assert len(general_pool_categories()["colors"]) > 0


@pytest.mark.parametrize("name", EXPECTED_CATEGORIES)
def test_category_present_and_nonempty(categories, name):
    assert name in categories
    assert len(categories[name]) > 0


def test_categories_have_no_extras(categories):
    assert set(categories) == set(EXPECTED_CATEGORIES)


@pytest.mark.parametrize("name", EXPECTED_CATEGORIES)
def test_category_under_balance_cap(pool, categories, name):
    share = len(categories[name]) / len(pool)
    assert share <= BALANCE_CAP, f"{name} is {share:.1%} of the pool"


def test_descriptions_are_tidy(pool):
    for text in pool:
        assert text == text.strip(), text
        assert "  " not in text, text
        assert text[0].isupper() or text[0].isdigit(), text
        assert not text.endswith("."), text


def test_article_a_before_consonant_sound(pool):
    # "letter A" and "letter E" name a letter, so they are not articles.
    pattern = re.compile(r"(?<!letter )\b[Aa] ([aeiouAEIOU][\w'-]*)")
    offending = [
        text
        for text in pool
        for match in pattern.finditer(text)
        if not match.group(1).lower().startswith(CONSONANT_SOUND_EXCEPTIONS)
    ]
    assert offending == []


def test_article_an_before_vowel_sound(pool):
    pattern = re.compile(r"\b[Aa]n ([^aeiouAEIOU\d][\w'-]*)")
    offending = [
        text
        for text in pool
        for match in pattern.finditer(text)
        if not match.group(1).lower().startswith(VOWEL_SOUND_EXCEPTIONS)
    ]
    assert offending == []


def test_article_before_numbers(pool):
    assert "A photo of an 8-year-old girl" in pool
    assert "A photo of an 18-year-old man" in pool
    assert "A photo of an 80-year-old woman" in pool
    assert "A photo of a 30-year-old man" in pool
    assert not [text for text in pool if re.search(r"\b[Aa] (8|11-|18-)", text)]


def test_counts_use_correct_number(pool):
    assert "A photo of one dog" in pool
    assert "A photo of three dogs" in pool
    assert "A photo of two children" in pool
    assert "A photo of ten people" in pool
    assert "A photo of four sheep" in pool
    assert "A photo of five mice" in pool
    assert not [text for text in pool if re.match(r"A photo of one \w+s$", text)]


def test_pool_contains_example_captions(pool):
    assert "A photo taken in Lisbon, Portugal" in pool
    assert "An image with a warm orange palette" in pool
    assert "A close-up photo of a tabby cat" in pool
    assert "A photo with the letter Q" in pool
    assert "Wet cobblestones in the rain" in pool
    assert "A watercolor painting of a harbor" in pool
    assert "A crowd of people" in pool


def test_letters_cover_alphabet(categories):
    letters = categories["letters"]
    for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        assert f"A photo with the letter {letter}" in letters


def test_digits_cover_zero_to_nine(categories):
    numbers = categories["numbers"]
    for digit in range(10):
        assert f"The digit {digit} painted on a door" in numbers


@pytest.mark.parametrize(
    ("phrase", "article"),
    [
        ("apple", "an"),
        ("dog", "a"),
        ("university campus", "a"),
        ("one-way street", "a"),
        ("European city", "a"),
        ("hourglass", "an"),
        ("X-ray image", "an"),
        ("3D render", "a"),
        ("8-year-old girl", "an"),
        ("11-year-old boy", "an"),
        ("18-year-old man", "an"),
        ("80-year-old woman", "an"),
        ("13-year-old boy", "a"),
        ("ukiyo-e print", "an"),
    ],
)
def test_indefinite_article_cases(phrase, article):
    assert pools._indefinite_article(phrase) == article


@pytest.mark.parametrize(
    ("noun", "plural"),
    [
        ("dog", "dogs"),
        ("fox", "foxes"),
        ("butterfly", "butterflies"),
        ("turkey", "turkeys"),
        ("sheep", "sheep"),
        ("mouse", "mice"),
        ("guinea pig", "guinea pigs"),
        ("person", "people"),
        ("wolf", "wolves"),
        ("cross", "crosses"),
        ("octopus", "octopuses"),
    ],
)
def test_plural_cases(noun, plural):
    assert pools._plural(noun) == plural


# ---------------------------------------------------------------------------
# load_pool


def test_load_pool_drops_blanks_and_duplicates(tmp_path):
    path = tmp_path / "pool.txt"
    path.write_text("A dog\n\n  A cat  \nA dog\n   \nA bird\nA cat\n", encoding="utf-8")
    assert load_pool(path) == ["A dog", "A cat", "A bird"]


def test_load_pool_logs_dropped_counts(tmp_path, caplog):
    path = tmp_path / "pool.txt"
    path.write_text("A dog\n\n  A cat  \nA dog\n   \nA bird\nA cat\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="textspan.pools"):
        load_pool(path)
    assert "2 blank lines" in caplog.text
    assert "2 duplicate lines" in caplog.text
    assert "Loaded 3 descriptions" in caplog.text


def test_load_pool_keeps_case_variants(tmp_path):
    path = tmp_path / "pool.txt"
    path.write_text("A dog\na dog\n", encoding="utf-8")
    assert load_pool(path) == ["A dog", "a dog"]


def test_load_pool_reads_utf8(tmp_path):
    path = tmp_path / "pool.txt"
    path.write_text("\ufeffA photo taken in São Paulo\nCafé au lait\n", encoding="utf-8")
    assert load_pool(str(path)) == ["A photo taken in São Paulo", "Café au lait"]


def test_load_pool_missing_file(tmp_path):
    path = tmp_path / "missing.txt"
    with pytest.raises(FileNotFoundError) as excinfo:
        load_pool(path)
    assert str(path) in str(excinfo.value)
    assert "one description per line" in str(excinfo.value)


def test_load_pool_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match="directory"):
        load_pool(tmp_path)


def test_load_pool_empty_file(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="contains no descriptions"):
        load_pool(path)


def test_load_pool_only_blank_lines(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_text("\n   \n\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="3 blank lines"):
        load_pool(path)


def test_load_pool_invalid_utf8(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Café\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not valid UTF-8"):
        load_pool(path)


def test_load_pool_rejects_non_path():
    with pytest.raises(TypeError, match="path must be"):
        load_pool(42)


# ---------------------------------------------------------------------------
# validate_pool


def test_validate_pool_returns_list():
    texts = ("A dog", "A cat")
    assert validate_pool(texts) == ["A dog", "A cat"]


def test_validate_pool_keeps_duplicates():
    assert validate_pool(["A dog", "A dog"]) == ["A dog", "A dog"]


def test_validate_pool_rejects_empty():
    with pytest.raises(ValueError, match="texts is empty"):
        validate_pool([])


def test_validate_pool_rejects_single_string():
    with pytest.raises(TypeError, match="single str"):
        validate_pool("A dog")


def test_validate_pool_rejects_non_sequence():
    with pytest.raises(TypeError, match="sequence of strings"):
        validate_pool({"A dog", "A cat"})


def test_validate_pool_names_bad_entry():
    with pytest.raises(TypeError, match=r"texts\[1\] is int 7, expected str"):
        validate_pool(["A dog", 7])


@pytest.mark.parametrize(("blank", "kind"), [("", "an empty string"), ("  \t", "whitespace only")])
def test_validate_pool_rejects_blank(blank, kind):
    with pytest.raises(ValueError, match=rf"texts\[2\] is {kind}"):
        validate_pool(["A dog", "A cat", blank])


# ---------------------------------------------------------------------------
# pool_hash


def test_pool_hash_is_pinned():
    digest = pool_hash(["A photo of a dog", "A photo of a cat"])
    assert digest == "15d67cfce471b00ae399378b93bd4fd77b0147128c93ddfe4a3e968592e2d7aa"


def test_pool_hash_is_hex_sha256():
    assert re.fullmatch(r"[0-9a-f]{64}", pool_hash(["A dog"]))


def test_pool_hash_accepts_tuple():
    assert pool_hash(("A dog", "A cat")) == pool_hash(["A dog", "A cat"])


def test_pool_hash_changes_with_text():
    assert pool_hash(["A dog", "A cat"]) != pool_hash(["A dog", "A cats"])


def test_pool_hash_changes_with_order():
    assert pool_hash(["A dog", "A cat"]) != pool_hash(["A cat", "A dog"])


def test_pool_hash_separates_boundaries():
    assert pool_hash(["ab", "c"]) != pool_hash(["a", "bc"])


def test_pool_hash_rejects_empty():
    with pytest.raises(ValueError, match="texts is empty"):
        pool_hash([])


# ---------------------------------------------------------------------------
# random_unit_vectors


def test_random_vectors_shape_and_dtype():
    vectors = random_unit_vectors(5, 16)
    assert vectors.shape == (5, 16)
    assert vectors.dtype == torch.float32


def test_random_vectors_unit_norm():
    norms = random_unit_vectors(100, 768, seed=3).norm(dim=1)
    assert torch.allclose(norms, torch.ones(100), atol=1e-5)


def test_random_vectors_same_seed_equal():
    assert torch.equal(random_unit_vectors(10, 32, seed=7), random_unit_vectors(10, 32, seed=7))


def test_random_vectors_different_seed_differ():
    assert not torch.equal(random_unit_vectors(10, 32, seed=7), random_unit_vectors(10, 32, seed=8))


def test_random_vectors_ignore_global_seed():
    torch.manual_seed(123)
    first = random_unit_vectors(4, 8)
    torch.manual_seed(456)
    second = random_unit_vectors(4, 8)
    assert torch.equal(first, second)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"n": 0, "dim": 4}, ValueError, "n must be positive, got 0"),
        ({"n": -3, "dim": 4}, ValueError, "n must be positive, got -3"),
        ({"n": 4, "dim": 0}, ValueError, "dim must be positive, got 0"),
        ({"n": 2.0, "dim": 4}, TypeError, "n must be an int, got float"),
        ({"n": True, "dim": 4}, TypeError, "n must be an int, got bool"),
        ({"n": 4, "dim": "8"}, TypeError, "dim must be an int, got str"),
        ({"n": 4, "dim": 8, "seed": 1.5}, TypeError, "seed must be an int, got float"),
        ({"n": 4, "dim": 8, "seed": 2**64}, ValueError, "outside the range"),
    ],
)
def test_random_vectors_bad_input(kwargs, error, message):
    with pytest.raises(error, match=message):
        random_unit_vectors(**kwargs)


# ---------------------------------------------------------------------------
# common_words_pool


def test_common_words_most_frequent_first():
    pytest.importorskip("wordfreq")
    words = common_words_pool(100)
    assert len(words) == 100
    assert words[0] == "the"


def test_common_words_are_unique():
    pytest.importorskip("wordfreq")
    words = common_words_pool(1000)
    assert len(set(words)) == len(words)


@pytest.mark.parametrize(("n", "error"), [(0, ValueError), (-1, ValueError), (1.5, TypeError), ("10", TypeError)])
def test_common_words_bad_n(n, error):
    with pytest.raises(error, match="n must be"):
        common_words_pool(n)


def test_common_words_missing_wordfreq(monkeypatch):
    # A None entry in sys.modules makes `import wordfreq` raise ImportError.
    monkeypatch.setitem(sys.modules, "wordfreq", None)
    with pytest.raises(ImportError, match="pip install wordfreq"):
        common_words_pool(10)
