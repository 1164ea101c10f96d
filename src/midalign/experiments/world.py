"""A small synthetic multilingual world for measuring cross-lingual transfer on a CPU.

Concepts (slot values, verbs, nouns) are shared; each language expresses them with its own vocabulary (disjoint,
drawn from its own syllables and alphabet — one language uses Cyrillic letters), its own word order and its own
function words:

* ``src`` — verb, object, then slots in template order, slots introduced by prepositions (English-like);
* ``sov`` — slots in reverse order each followed by a postposition, then the object, then the verb (verb-final);
* ``cyr`` — Cyrillic "script"; verb first, slots in reverse order with prepositions, object last, and a
  sentence-final question/command particle.

Commands are voice-assistant-like; the slot-filling target lists ``label : value`` with English labels shared by all
languages and values in the input language, or ``None``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["SLOT_TYPES", "INTENTS", "Instance", "Language", "World", "make_world"]

SLOT_TYPES = {"time": 12, "date": 7, "place": 10, "person": 8, "device": 6, "genre": 6}
# intent -> (verb concept, object concept or None, slot types in canonical order)
INTENTS = {
    "set_alarm": ("set", "alarm", ("time", "date")),
    "weather": ("tell", "weather", ("place", "date")),
    "play_music": ("play", "music", ("genre",)),
    "call": ("call", None, ("person", "time")),
    "turn_on": ("switch_on", None, ("device", "place")),
    "remind": ("remind", "task", ("person", "date", "time")),
    "joke": ("tell", "joke", ()),
}
_FUNCTION = ["prep_time", "prep_date", "prep_place", "prep_person", "prep_device", "prep_genre", "final"]
_ALPHABETS = {
    "src": ("ptkbdgmnlrs", "aeiou"),
    "sov": ("zxvwfhjq", "yäöü"),
    "cyr": ("бвгджзклмнпрстфхцчш", "аеиоуыэюя"),
}
_ORDERS = ("src", "sov", "cyr")


@dataclass(frozen=True)
class Instance:
    """One meaning: an intent and its slots as (slot type, concept index)."""

    intent: str
    slots: tuple[tuple[str, int], ...]


@dataclass
class Language:
    name: str
    lexicon: dict[str, str]  # concept key -> word

    def word(self, key: str) -> str:
        return self.lexicon[key]

    def value(self, slot: str, idx: int) -> str:
        return self.lexicon[f"{slot}_{idx}"]

    def render(self, inst: Instance) -> tuple[str, list[tuple[str, str]]]:
        """(sentence, [(slot label, value word)] in sentence order)."""
        verb, obj, _ = INTENTS[inst.intent]
        v = self.word(verb)
        o = [self.word(obj)] if obj else []
        slots = [(s, self.value(s, i)) for s, i in inst.slots]
        if self.name == "src":
            parts = [v, *o]
            for s, w in slots:
                parts += [self.word(f"prep_{s}"), w]
        elif self.name == "sov":
            parts = []
            for s, w in reversed(slots):
                parts += [w, self.word(f"prep_{s}")]
            parts += [*o, v]
        else:
            parts = [v]
            for s, w in reversed(slots):
                parts += [self.word(f"prep_{s}"), w]
            parts += [*o, self.word("final")]
        ordered = [(s, w) for s, w in slots] if self.name == "src" else list(reversed(slots))
        return " ".join(parts), ordered


def _words(rng: random.Random, alphabet: tuple[str, str], n: int, taken: set[str]) -> list[str]:
    cons, vow = alphabet
    out = []
    while len(out) < n:
        w = "".join(rng.choice(cons) + rng.choice(vow) for _ in range(rng.choice([2, 2, 3])))
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


@dataclass
class World:
    languages: dict[str, Language]
    seed: int

    def sample(self, rng: random.Random) -> Instance:
        intent = rng.choice(sorted(INTENTS))
        types = INTENTS[intent][2]
        chosen = [t for t in types if rng.random() < 0.75] if types else []
        if types and not chosen and rng.random() < 0.8:
            chosen = [rng.choice(types)]
        return Instance(intent, tuple((t, rng.randrange(SLOT_TYPES[t])) for t in chosen))

    def instances(self, n: int, seed: int) -> list[Instance]:
        rng = random.Random(seed)
        return [self.sample(rng) for _ in range(n)]

    def annotated(self, inst: Instance, lang: str) -> str:
        """MASSIVE-style ``annot_utt`` of the rendering (``[label : value]`` marks the slot words)."""
        sent, slots = self.languages[lang].render(inst)
        values = {w: s for s, w in slots}
        return " ".join(f"[{values[w]} : {w}]" if w in values else w for w in sent.split())

    def target(self, inst: Instance, lang: str, values: str | None = None) -> str:
        """``label : value ; ...`` in the order of ``lang``'s sentence, values written in ``values`` (default:
        ``lang``, i.e. copied from the input as in MASSIVE) — or ``None``."""
        _, slots = self.languages[lang].render(inst)
        if values is not None and values != lang:
            lex = self.languages[values]
            slots = [(s, lex.value(s, i)) for s, i in self._order(inst, slots)]
        return " ; ".join(f"{s} : {w}" for s, w in slots) if slots else "None"

    @staticmethod
    def _order(inst: Instance, slots: list[tuple[str, str]]) -> list[tuple[str, int]]:
        """(slot type, concept index) of ``inst`` in the order of a rendering's ``slots``."""
        index = dict(inst.slots)
        return [(s, index[s]) for s, _ in slots]

    def vocabulary(self) -> list[str]:
        words = {w for lang in self.languages.values() for w in lang.lexicon.values()}
        return sorted(words | set(SLOT_TYPES) | {":", ";", "None", "=>"})


def make_world(seed: int = 0, languages: tuple[str, ...] = _ORDERS) -> World:
    """Deterministic world: the same seed gives the same vocabularies."""
    rng = random.Random(seed)
    concepts = sorted({c for v, o, _ in INTENTS.values() for c in (v, o) if c})
    concepts += [f"{s}_{i}" for s, n in SLOT_TYPES.items() for i in range(n)]
    concepts += _FUNCTION
    taken: set[str] = set()
    langs = {}
    for name in languages:
        if name not in _ALPHABETS:
            raise ValueError(f"unknown synthetic language {name!r}; choose from {list(_ALPHABETS)}")
        langs[name] = Language(name, dict(zip(concepts, _words(rng, _ALPHABETS[name], len(concepts), taken))))
    return World(langs, seed)
