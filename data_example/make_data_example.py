"""Regenerate the files of data_example/ from the sources written by hand in this folder:

* ``parallel_sentences.tsv`` — 64 voice-assistant sentences in English, German, French, Spanish, Russian and
  Chinese (one sentence per line, tab-separated, translated by us);
* the English slot-filling templates below (MASSIVE-style annotations ``[label : value]``).

    python data_example/make_data_example.py [--model PATH]   # default: the embedded SmolLM2 chat template

Outputs (all JSON lines):
  massive/en-US.jsonl                  MASSIVE-style raw rows (the official release layout): id, locale, partition,
                                       scenario, intent, utt, annot_utt
  parallel.jsonl                       one row per sentence: id, split (train / heldout), en, de, fr, es, ru, zh
  train_baseline.json                  {"prefix", "text"} for the train partition (rendered with the chat template)
  valid_baseline.json                  the same for the dev partition
  train_baseline_with_alignment.json   train rows + {"text_parallel_0" (English), "text_parallel_1"} from the
                                       train sentences (all five languages, cycled)
  valid_baseline_with_alignment.json   dev rows + held-out pairs
  heldout_pairs.json                   the held-out pairs only (16 sentences x 5 languages), with "lang"
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
LANGS = ["en", "de", "fr", "es", "ru", "zh"]
N_HELDOUT = 16

V = {
    "time": ["seven am", "six thirty", "nine am", "noon", "five pm", "eight fifteen", "ten o'clock", "midnight"],
    "date": ["tomorrow", "friday", "monday", "next week", "today", "this weekend", "march third", "saturday"],
    "timeofday": ["morning", "afternoon", "evening", "tonight"],
    "place_name": ["berlin", "paris", "tokyo", "london", "madrid", "new york", "moscow", "beijing"],
    "weather_descriptor": ["rain", "snow", "sunny", "windy", "cold"],
    "music_genre": ["jazz", "rock", "classical music", "hip hop", "pop"],
    "artist_name": ["adele", "the beatles", "miles davis", "shakira", "queen"],
    "playlist_name": ["workout", "chill vibes", "road trip", "focus"],
    "house_place": ["kitchen", "bedroom", "living room", "bathroom", "hallway"],
    "color_type": ["blue", "red", "warm white", "green"],
    "person": ["anna", "john", "maria", "peter", "li wei"],
    "relation": ["mom", "sister", "boss", "brother", "wife"],
    "event_name": ["meeting", "dentist appointment", "yoga class", "team lunch", "birthday party"],
    "food_type": ["pizza", "sushi", "pasta", "curry", "burgers"],
    "business_type": ["restaurant", "pharmacy", "gas station", "supermarket"],
    "transport_type": ["taxi", "train", "bus", "uber"],
    "list_name": ["shopping", "party", "packing", "to do"],
    "item": ["milk", "eggs", "bread", "coffee", "apples"],
    "currency_name": ["euros", "dollars", "yen", "pounds"],
    "news_topic": ["football", "politics", "technology", "the election"],
    "device_type": ["vacuum cleaner", "coffee machine", "heater", "tv"],
    "media_type": ["podcast", "audiobook", "radio"],
    "duration": ["ten minutes", "half an hour", "two hours", "five minutes"],
}

# (scenario, intent, annotated template); {slot} is replaced by "[slot : value]"
TEMPLATES = [
    ("alarm", "alarm_set", "wake me up at {time} {date}"),
    ("alarm", "alarm_set", "set an alarm for {time}"),
    ("alarm", "alarm_set", "please set an alarm {date} at {time}"),
    ("alarm", "alarm_remove", "cancel my alarm for {date}"),
    ("alarm", "alarm_query", "what alarms do i have {date}"),
    ("weather", "weather_query", "what is the weather like in {place_name} {date}"),
    ("weather", "weather_query", "will it {weather_descriptor} {date}"),
    ("weather", "weather_query", "is it going to be {weather_descriptor} in {place_name} this {timeofday}"),
    ("weather", "weather_query", "what's the temperature outside"),
    ("play", "play_music", "play some {music_genre}"),
    ("play", "play_music", "play songs by {artist_name}"),
    ("play", "play_music", "start my {playlist_name} playlist"),
    ("play", "play_podcasts", "play the latest episode of my {media_type}"),
    ("play", "play_radio", "turn on the {media_type}"),
    ("audio", "audio_volume_up", "turn the volume up"),
    ("iot", "iot_hue_lightoff", "turn off the lights in the {house_place}"),
    ("iot", "iot_hue_lightdim", "dim the lights in the {house_place}"),
    ("iot", "iot_hue_lightchange", "make the {house_place} lights {color_type}"),
    ("iot", "iot_wemo_on", "switch on the {device_type}"),
    ("iot", "iot_cleaning", "start the {device_type} {timeofday}"),
    ("calendar", "calendar_set", "remind me to call my {relation} at {time}"),
    ("calendar", "calendar_set", "add a {event_name} with {person} on {date}"),
    ("calendar", "calendar_query", "what is on my calendar for {date}"),
    ("calendar", "calendar_remove", "delete the {event_name} {date}"),
    ("email", "email_sendemail", "send an email to {person} about the {event_name}"),
    ("email", "email_query", "do i have any new emails from my {relation}"),
    ("social", "social_post", "tell {person} that i am running late"),
    ("takeaway", "takeaway_order", "order {food_type} for dinner"),
    ("recommendation", "recommendation_locations", "find a {food_type} {business_type} near me"),
    ("transport", "transport_taxi", "book a {transport_type} to the airport at {time}"),
    ("transport", "transport_query", "when does the next {transport_type} to {place_name} leave"),
    ("datetime", "datetime_query", "what time is it in {place_name}"),
    ("datetime", "datetime_query", "what is the date {date}"),
    ("general", "general_quirky", "tell me a joke"),
    ("general", "general_quirky", "how are you doing"),
    ("timer", "alarm_set", "set a timer for {duration}"),
    ("lists", "lists_createoradd", "add {item} to my {list_name} list"),
    ("lists", "lists_query", "what is on my {list_name} list"),
    ("lists", "lists_remove", "remove {item} from the {list_name} list"),
    ("qa", "qa_currency", "how many {currency_name} is one hundred dollars"),
    ("news", "news_query", "what is the latest news about {news_topic}"),
    ("news", "news_query", "read me the headlines"),
    ("music", "music_likeness", "i really like {artist_name}"),
]

SLOT_LABEL = {"item": "item", "duration": "time", "business_type": "business_type"}


def render(template: str, rng: random.Random) -> str:
    annot = template
    for slot in V:
        token = "{" + slot + "}"
        while token in annot:
            annot = annot.replace(token, f"[{SLOT_LABEL.get(slot, slot)} : {rng.choice(V[slot])}]", 1)
    return annot


def massive_rows(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    seen, rows = set(), []
    sizes = {"train": 320, "dev": 64, "test": 64}
    for partition, n in sizes.items():
        while sum(r["partition"] == partition for r in rows) < n:
            scenario, intent, template = rng.choice(TEMPLATES)
            annot = render(template, rng)
            if annot in seen and "{" in template:
                continue
            seen.add(annot)
            from midalign.tasks.massive import parse_annotation

            utt, _ = parse_annotation(annot)
            rows.append(
                {
                    "id": str(len(rows)),
                    "locale": "en-US",
                    "partition": partition,
                    "scenario": scenario,
                    "intent": intent,
                    "utt": utt,
                    "annot_utt": annot,
                }
            )
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{path.relative_to(HERE.parent)}: {len(rows)} rows")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="tokenizer whose chat template renders the prompts")
    args = ap.parse_args()
    from midalign.inference.prompts import render_example
    from midalign.models import load_tokenizer
    from midalign.tasks.massive import SYSTEM_PROMPT, gold_target, slot_prompt

    tok = load_tokenizer(args.model)
    massive = massive_rows()
    (HERE / "massive").mkdir(exist_ok=True)
    write(HERE / "massive" / "en-US.jsonl", massive)

    lines = (HERE / "parallel_sentences.tsv").read_text(encoding="utf-8").strip("\n").split("\n")
    parallel = []
    for i, line in enumerate(lines):
        cells = line.split("\t")
        assert len(cells) == len(LANGS), f"parallel_sentences.tsv:{i + 1}: expected {len(LANGS)} columns"
        split = (
            "heldout"
            if i % (len(lines) // N_HELDOUT) == 0 and sum(p["split"] == "heldout" for p in parallel) < N_HELDOUT
            else "train"
        )
        parallel.append({"id": i, "split": split, **dict(zip(LANGS, cells))})
    write(HERE / "parallel.jsonl", parallel)

    def pairs(split):
        return [
            {"text_parallel_0": p["en"], "text_parallel_1": p[lang], "lang": lang}
            for lang in LANGS[1:]
            for p in parallel
            if p["split"] == split
        ]

    train_pairs, heldout = pairs("train"), pairs("heldout")
    random.Random(1).shuffle(train_pairs)
    task = {
        part: [
            render_example(tok, slot_prompt(r["utt"]), gold_target(r["annot_utt"]), SYSTEM_PROMPT)
            for r in massive
            if r["partition"] == part
        ]
        for part in ("train", "dev")
    }
    write(HERE / "train_baseline.json", task["train"])
    write(HERE / "valid_baseline.json", task["dev"])
    strip = lambda p: {k: p[k] for k in ("text_parallel_0", "text_parallel_1")}  # noqa: E731
    write(
        HERE / "train_baseline_with_alignment.json",
        [{**row, **strip(train_pairs[i % len(train_pairs)])} for i, row in enumerate(task["train"])],
    )
    write(
        HERE / "valid_baseline_with_alignment.json",
        [{**row, **strip(heldout[i % len(heldout)])} for i, row in enumerate(task["dev"])],
    )
    write(HERE / "heldout_pairs.json", heldout)


if __name__ == "__main__":
    main()
